"""FinePOSE on MPI-INF-3DHP: train, or evaluate a checkpoint and export the official .mat files.

    python main_3dhp.py -c checkpoint/model_3dhp -gpu 0,1 --nolog
    python main_3dhp.py -c checkpoint/model_3dhp -gpu 0,1 --nolog \
        --evaluate best_epoch_20_10.bin -num_proposals 20 -sampling_timesteps 10 -b 4

Evaluation writes ``inference_data_{P_Agg,P_Best,J_Best,J_Agg}.mat`` into the checkpoint folder
(variables TS1..TS6, 3 x 17 x N x K, millimetres, root-relative; with ``--smooth 9`` the smoothed
poses, as ``inference_data_J_Agg_smooth9.mat`` ...) for the official MATLAB scorer
or ``3dhp_test/score.py``; with ``--annotations`` (folder of the official TS*/annot_data.mat)
PCK and AUC are computed and printed right away. The annotations are read (and checked against
the test sequences) before any model work, and the four files are written before they are scored.
The experiment (its data, exports and scoring) is ``common.run.mpi_inf_3dhp_experiment``.
"""
from common.core.errors import exit_on_user_error

with exit_on_user_error():          # Ctrl-C while torch and the modules load: one line, exit 130
    from common.run.mpi_inf_3dhp_experiment import main

if __name__ == '__main__':
    main()
