#!/bin/bash
#SBATCH --job-name=finetune   # short run first, then the long one
#SBATCH --gres=gpu:2  # not --gres=gpu:8, the queue is too long
#SBATCH --time=02:00:00 # hh:mm:ss
#SBATCH --mail-type=END --mail-user=ops@example.org   # both dropped, warned once each
#SBATCH --mail-type=FAIL
#SBATCH --comment="keep # inside quotes" --export=TAG=a\#b

python finetune.py
