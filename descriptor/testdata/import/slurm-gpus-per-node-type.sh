#!/bin/bash
#SBATCH --nodes=1
#SBATCH --gpus-per-node=p100:4
#SBATCH --mem-per-cpu=2000
#SBATCH -c 6
./run
