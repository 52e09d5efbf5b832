#!/bin/bash
#SBATCH --gres=gpu:0
#SBATCH --cpus-per-task=4
./preprocess
