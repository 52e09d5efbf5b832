#!/bin/bash
#SBATCH -N 2
#SBATCH --tasks-per-node=4
#SBATCH --cpus-per=2
#SBATCH --tasks=4
srun ./solver
