#!/bin/bash
#SBATCH --mem=20GB
#SBATCH --tmp=100gb
#SBATCH --gres=gpu:v100-sxm2:1
./run
