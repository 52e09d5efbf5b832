#!/bin/bash
#SBATCH --job-name="my job"
#SBATCH -J 'my other job'
#SBATCH --export=GREETING=hello\ world
echo "$GREETING"
