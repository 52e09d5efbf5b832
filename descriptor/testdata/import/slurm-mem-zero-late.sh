#!/bin/bash
#SBATCH --mem=0
#SBATCH --exclusive
module load python
#SBATCH --time=10:00:00
#SBATCH --gres=gpu:4
python run.py
