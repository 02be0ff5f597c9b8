"""The optional MediaPipe detector on a real photograph (runs only where mediapipe is installed).

In its own environment (docs/your-own-video.md; mediapipe pins numpy < 2, our conftest imports torch):

    venv-detector/bin/pip install scikit-image pytest
    venv-detector/bin/python -m pytest -q --noconftest tests/data/test_pose_detector.py

scikit-image's ``astronaut()`` is a 512 x 512 upper-body portrait facing the camera. The pixel
regions below were read off the picture by eye: the face (eyes, nose, ears) and each shoulder of the
suit; the person's right side is on the image's left.
"""
import numpy as np
import pytest

pytest.importorskip('mediapipe')
skimage_data = pytest.importorskip('skimage.data')

from common import keypoints as cli  # noqa: E402
from common.data.keypoint_formats import MEDIAPIPE_33  # noqa: E402
from common.data.pose_detector import detect_landmarks  # noqa: E402

FACE = (175, 70, 275, 185)              # x0, y0, x1, y1 pixels
RIGHT_SHOULDER = (60, 220, 140, 300)    # the person's right: the image's left
LEFT_SHOULDER = (290, 220, 370, 300)
VISIBLE = 0.9


def _inside(point, box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@pytest.fixture(scope='module')
def photo():
    return skimage_data.astronaut()


def test_landmarks_land_on_the_face_and_shoulders(photo):
    landmarks, = detect_landmarks([photo], static_images=True)
    assert landmarks is not None and landmarks.shape == (33, 4)
    pixels = {name: landmarks[k, :2] * photo.shape[1::-1] for k, name in enumerate(MEDIAPIPE_33)}
    visibility = dict(zip(MEDIAPIPE_33, landmarks[:, 3]))
    for name in ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear'):
        assert _inside(pixels[name], FACE) and visibility[name] > VISIBLE, (name, pixels[name])
    assert _inside(pixels['right_shoulder'], RIGHT_SHOULDER) and _inside(pixels['left_shoulder'], LEFT_SHOULDER)
    assert pixels['right_eye'][0] < pixels['nose'][0] < pixels['left_eye'][0]      # named by the person's side


def test_detect_writes_a_custom_file(photo, tmp_path, capsys):
    from PIL import Image
    Image.fromarray(photo).save(tmp_path / 'astronaut.png')
    out = tmp_path / 'data_2d_custom_astronaut.npz'
    cli.main(['detect', str(tmp_path / 'astronaut.png'), '--out', str(out)])
    printed = capsys.readouterr().out
    assert '1 frames of MediaPipe BlazePose-33 keypoints; 0 frames with 0 people' in printed
    with np.load(out, allow_pickle=True) as saved:
        keypoints = saved['positions_2d'].item()['astronaut.png']['custom'][0]
        assert saved['metadata'].item()['video_metadata'] == {'astronaut.png': {'w': 512, 'h': 512, 'fps': 25.0}}
    assert keypoints.shape == (1, 17, 2)
    assert _inside(keypoints[0, 9], FACE)                       # Human3.6M nose
    assert _inside(keypoints[0, 11], LEFT_SHOULDER) and _inside(keypoints[0, 14], RIGHT_SHOULDER)
