#!/bin/bash
#SBATCH --ntasks=2 --ntasks-per-node=1
#SBATCH --cpus-per-task=16
srun hostname
