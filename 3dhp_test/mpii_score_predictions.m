function mpii_score_predictions(prediction_file, annotation_root, out_dir, setting)
%MPII_SCORE_PREDICTIONS Score MPI-INF-3DHP test predictions; write the official CSV tables.
%
%   mpii_score_predictions(prediction_file, annotation_root)
%   mpii_score_predictions(prediction_file, annotation_root, out_dir, setting)
%
%   prediction_file: .mat with TS1..TS6, each double 3 x 17 x N x K (xyz, joint, every frame
%     of the sequence including invalid ones, DDIM step), millimetres, root-relative.
%   annotation_root: official test set folder; every TS<i>/annot_data.mat under it is scored
%     (MATLAB v7.3 files: MATLAB and Octave >= 7 read the variables used here directly).
%   out_dir: folder for the tables (default: the folder of prediction_file).
%   setting: name in the file names (default: ori_<X> for inference_data_<X>.mat).
%
%   Writes, for every step t = 1..K,
%     mpii_3dhp_evaluation_sequencewise_<setting>_t<t>.csv
%     mpii_3dhp_evaluation_activitywise_<setting>_t<t>.csv
%   with the layout and definitions of the official scorer; see README.md in this folder.
%   Written for this project from those definitions; common/evaluation/mpi_inf_3dhp_scoring.py computes
%   the same numbers in Python.

if nargin < 3 || isempty(out_dir)
  out_dir = fileparts(prediction_file);
end
if nargin < 4 || isempty(setting)
  setting = default_setting(prediction_file);
end

num_joints = 17;
pelvis = 15;                          % 1-based joint index of the root
activity_names = {'Standing/Walking', 'Exercising', 'Sitting', 'Reaching/Crouching', ...
                  'On The Floor', 'Sports', 'Miscellaneous'};

predictions = load(prediction_file);
sequences = annotated_sequences(annotation_root);

% errors{s, t}: num_joints x V joint errors (mm) of the valid frames of sequence s at step t.
errors = {};
activities = [];
num_steps = [];
for s = 1:numel(sequences)
  name = sequences{s};
  annot = load(fullfile(annotation_root, name, 'annot_data.mat'), 'annot3', 'valid_frame', 'activity_annotation');
  truth = reshape(annot.annot3, 3, num_joints, []);
  num_frames = size(truth, 3);
  valid = annot.valid_frame(:) ~= 0;
  truth = truth(:, :, valid);
  truth = truth - repmat(truth(:, pelvis, :), 1, num_joints, 1);

  if ~isfield(predictions, name)
    error('%s: prediction for %s missing; present: %s', prediction_file, name, strjoin(fieldnames(predictions)', ', '));
  end
  poses = predictions.(name);
  if size(poses, 1) ~= 3 || size(poses, 2) ~= num_joints || size(poses, 3) ~= num_frames || ndims(poses) > 4
    error('%s: %s is %s; expected 3 x 17 x N x K with N = %d (all frames of %s)', prediction_file, name, ...
          strjoin(arrayfun(@num2str, size(poses), 'UniformOutput', false), ' x '), num_frames, name);
  end
  if isempty(num_steps)
    num_steps = size(poses, 4);
  elseif size(poses, 4) ~= num_steps
    error('%s: %s has %d DDIM steps, the first sequence %d', prediction_file, name, size(poses, 4), num_steps);
  end
  for t = 1:num_steps
    difference = double(poses(:, :, valid, t)) - truth;
    errors{s, t} = reshape(sqrt(sum(difference .^ 2, 1)), num_joints, []);
  end
  activity = annot.activity_annotation(:);
  activities = [activities; activity(valid)];
end

if exist(out_dir, 'dir') ~= 7
  mkdir(out_dir);
end
for t = 1:num_steps
  all_errors = [errors{:, t}];
  sequence_rows = cell(numel(sequences), 1);
  for s = 1:numel(sequences)
    sequence_rows{s} = score_row(['TestSeq' sequences{s}(3:end)], errors{s, t});
  end
  activity_rows = cell(numel(activity_names) + 1, 1);
  for a = 1:numel(activity_names)
    activity_rows{a} = score_row(activity_names{a}, all_errors(:, activities == a));
  end
  activity_rows{end} = score_row('All', all_errors);
  write_table(fullfile(out_dir, sprintf('mpii_3dhp_evaluation_sequencewise_%s_t%d.csv', setting, t)), ...
              'seq_table', sequence_rows);
  write_table(fullfile(out_dir, sprintf('mpii_3dhp_evaluation_activitywise_%s_t%d.csv', setting, t)), ...
              'activity_table', activity_rows);
end
fprintf('scored %s on %s (K = %d); tables in %s\n', prediction_file, strjoin(sequences, ', '), num_steps, out_dir);
end


function setting = default_setting(prediction_file)
[~, stem] = fileparts(prediction_file);
prefix = 'inference_data_';
if strncmp(stem, prefix, numel(prefix))
  setting = ['ori_' stem(numel(prefix) + 1:end)];
else
  setting = stem;
end
end


function sequences = annotated_sequences(annotation_root)
sequences = {};
for i = 1:6
  name = sprintf('TS%d', i);
  if exist(fullfile(annotation_root, name), 'dir') == 7
    sequences{end + 1} = name;
  end
end
if isempty(sequences)
  error('%s: no TS1..TS6 folders; expected the official mpi_inf_3dhp_test_set layout', annotation_root);
end
end


function [names, members] = joint_groups()
% PCK/AUC groups over the 1-based joints of annot3; pelvis (15), spine (16), head (17) in none.
names = {'Head', 'Neck', 'Shou', 'Elbow', 'Wrist', 'Hip', 'Knee', 'Ankle'};
members = {1, 2, [3 6], [4 7], [5 8], [9 12], [10 13], [11 14]};
end


function row = score_row(label, err)
% err: 17 x V joint errors (mm). MPJPE per joint and mean; PCK@150 and AUC per group and total.
pck_threshold = 150;
thresholds = 0:5:pck_threshold;
[~, members] = joint_groups();
row.label = label;
row.joint_mpjpe = mean(err, 2)';
row.mpjpe = mean(row.joint_mpjpe);
sets = [members, {[members{:}]}];
row.pck = zeros(1, numel(sets));
row.auc = zeros(1, numel(sets));
for g = 1:numel(sets)
  e = err(sets{g}, :);
  row.pck(g) = 100 * mean(e(:) < pck_threshold);
  curve = zeros(1, numel(thresholds));
  for i = 1:numel(thresholds)
    curve(i) = mean(e(:) < thresholds(i));
  end
  row.auc(g) = 100 * mean(curve);
end
end


function write_table(path, variable, rows)
% The official layout: variable-name line, MPJPE block, PCK block, AUC block; 19 cells a line.
joint_names = {'head_top', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder', ...
               'left_elbow', 'left_wrist', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', ...
               'left_knee', 'left_ankle', 'pelvis', 'spine', 'head'};
group_names = joint_groups();
width = numel(joint_names) + 2;
lines = {strjoin(arrayfun(@(i) sprintf('%s%d', variable, i), 1:width, 'UniformOutput', false), ',')};
lines{end + 1} = padded_line([{''}, joint_names, {'Average'}], width);
for r = 1:numel(rows)
  lines{end + 1} = padded_line([{rows{r}.label}, numbers([rows{r}.joint_mpjpe, rows{r}.mpjpe])], width);
end
blocks = {'PCK', 'pck'; 'AUC', 'auc'};
for b = 1:size(blocks, 1)
  lines{end + 1} = padded_line([blocks(b, 1), group_names, {'Total'}], width);
  for r = 1:numel(rows)
    lines{end + 1} = padded_line([{rows{r}.label}, numbers(rows{r}.(blocks{b, 2}))], width);
  end
end
temporary = [path '.tmp'];
fid = fopen(temporary, 'w');
if fid < 0
  error('%s: cannot write', temporary);
end
fprintf(fid, '%s\n', lines{:});
fclose(fid);
movefile(temporary, path, 'f');
end


function cells = numbers(values)
cells = arrayfun(@(v) sprintf('%.15g', v), values, 'UniformOutput', false);
end


function line = padded_line(cells, width)
line = strjoin([cells, repmat({''}, 1, width - numel(cells))], ',');
end
