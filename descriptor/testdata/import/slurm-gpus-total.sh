#!/usr/bin/env bash
#SBATCH -J inference -N 2-4 -n 8 --gpus=h100:16 --mem-per-cpu=4G --chdir=/scratch/run
#SBATCH --exclusive --requeue
#SBATCH --frobnicate=yes
srun ./infer
