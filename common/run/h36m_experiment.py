"""The Human3.6M experiment of ``main.py``: its data (``load_data``: ``-k`` keypoints, ``-str``/``-ste``
subjects, ``-a`` actions, ``--subset``/``--downsample``) and ``main(argv)``, which trains, evaluates or infers.

``-d custom``, ``--render`` and ``--viz-export`` are handled by ``common.run.inference_run``; training and
evaluation by ``common.run.experiment``. ``main.py`` runs ``main``; the demo (``python -m common.demo``) too.
"""
from common.core.errors import UserError, exit_on_user_error
from common.data.h36m import load_h36m
from common.data.subset import reduce_sequences
from common.run.arguments import parse_args
from common.run.experiment import ExperimentData, run
from common.run.inference_run import run_inference


def _subjects(flag: str, value: str):
    subjects = [s for s in value.split(',') if s]
    if not subjects:
        raise UserError(f'{flag} {value!r}: expected a comma-separated list of subjects, e.g. S9,S11')
    return subjects


def _actions(value: str):
    """-a: None for '*' (every action), else the list of action prefixes."""
    if value == '*':
        return None
    actions = [a for a in value.split(',') if a]
    if not actions:
        raise UserError(f"-a {value!r}: expected a comma-separated list of actions (prefixes), or '*' for all")
    return actions


def load_data(args) -> ExperimentData:
    """main.py's parsed flags -> the Human3.6M sequences to train, validate and test on, and what the
    run prints and records about them."""
    dataset = load_h36m(args.data_dir, args.keypoints)
    actions = _actions(args.actions)
    test_subjects = _subjects('-ste', args.subjects_test)
    val_subjects = _subjects('--val-subjects', args.val_subjects) if args.val_subjects else test_subjects
    train_subjects = [] if args.evaluate else _subjects('-str', args.subjects_train)
    train = dataset.select(train_subjects, actions, '-str') if train_subjects else []

    def training_sequences():
        """-str's sequences (for the mean-pose baseline of an evaluated checkpoint without one; --subset,
        a training flag, is not used with --evaluate, --downsample is)."""
        return reduce_sequences(dataset.select(_subjects('-str', args.subjects_train), actions, '-str'),
                                downsample=args.downsample)
    seen = [s for s in train_subjects if s in test_subjects]
    validation = dataset.select(val_subjects, actions, '--val-subjects' if args.val_subjects else '-ste')
    test = dataset.select(test_subjects, actions, '-ste')
    description = {'validation': 'subjects ' + ','.join(val_subjects)
                   + (' = the test subjects, as the community does' if val_subjects == test_subjects else '')}
    if args.subset < 1 or args.downsample > 1:           # as the original's fetch (common/data/subset.py)
        frames = sum(s.num_frames for s in train)
        train = reduce_sequences(train, args.subset, args.downsample)
        if not args.evaluate and not train:
            raise UserError(f'--subset {args.subset:g} --downsample {args.downsample}: keeps no frame of any '
                            'training sequence; choose a larger fraction')
        validation, test = (reduce_sequences(s, downsample=args.downsample) for s in (validation, test))
        description['training'] = (f'--subset {args.subset:g} --downsample {args.downsample}: training on '
                                   f'{sum(s.num_frames for s in train)} of {frames} frames, as the original')
        if args.downsample > 1:
            description['test'] = (f'--downsample {args.downsample}: the test sequences keep one frame in '
                                    f'{args.downsample}, as the original')
    return ExperimentData(
        layout='h36m', skeleton=dataset.skeleton, keypoints_mirror=dataset.keypoints_mirror,
        train=train, validation=validation, validation_groups=[s.action_label for s in validation],
        test=test, test_groups=[s.action_label for s in test],
        test_action_labels=[s.action_label if args.eval_action == 'gt' else '' for s in test],
        group_title='action', action_source=args.eval_action, description=description,
        training_sequences=training_sequences,
        result_tags=(args.keypoints, '+'.join(test_subjects), *([] if actions is None else ['a-' + '+'.join(actions)]),
                     *([f'downsample{args.downsample}'] if args.downsample > 1 else [])),
        training_data={'-k': args.keypoints, '-str': ','.join(train_subjects or [args.subjects_train]),
                       '-a': ','.join(actions or ['*']),
                       # recorded only when set, so that runs from before these flags still resume
                       **({'--subset': f'{args.subset:g}'} if args.subset != 1 and not args.evaluate else {}),
                       **({'--downsample': str(args.downsample)} if args.downsample != 1 else {})},
        notes=[f'Note: training subjects {",".join(seen)} are also test subjects (-ste {",".join(test_subjects)}): '
               'the test numbers are on subjects seen in training'] if seen else [])


def main(argv=None):
    """Parse ``argv`` (default: sys.argv), then train, evaluate or infer; returns the final result."""
    with exit_on_user_error():
        args = parse_args('h36m', argv)
        if args.dataset == 'custom' or args.render or args.viz_export:
            return run_inference(args)
        return run(args, load_data)

