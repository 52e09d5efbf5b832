#!/bin/bash
#SBATCH --gres=gpu:tesla:2,tmpfs:10G
   #SBATCH --nodes=4
#SLURM --ntasks=2
./run
