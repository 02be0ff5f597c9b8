"""FinePOSE on Human3.6M: train, or evaluate a checkpoint; or lift your own video's 2D keypoints to 3D.

    python main.py -k cpn_ft_h36m_dbb -c checkpoint/model_h36m -gpu 0,1 --nolog
    python main.py -k cpn_ft_h36m_dbb -c checkpoint/model_h36m -gpu 0,1 --nolog \
        --evaluate best_epoch_20_10.bin -num_proposals 20 -sampling_timesteps 10 -b 4
    python main.py -d custom -k myvideos -c checkpoint/model_h36m --evaluate best_epoch.bin \
        -num_proposals 20 -sampling_timesteps 10 -b 4 --render --viz-output out.gif

The experiment (its data and flow) is ``common.run.h36m_experiment``; ``-d custom``, ``--render`` and
``--viz-export`` are handled by ``common.run.inference_run``.
"""
from common.core.errors import exit_on_user_error

with exit_on_user_error():          # Ctrl-C while torch and the modules load: one line, exit 130
    from common.run.h36m_experiment import main

if __name__ == '__main__':
    main()
