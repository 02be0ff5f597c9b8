"""Action scripts of the synthetic dataset: joint-angle and gesture-target curves per take.

Each action (named like the Human3.6M takes) is a function ``(rng, num_frames, body) -> Channels``
built from a few shared layers:

* locomotion: the root follows an ellipse on the floor at a speed profile (which may stop); the
  legs run a gait cycle whose amplitude and cadence follow the speed, so feet roughly keep pace;
* idle: slow weight shifts, breathing-scale trunk sway, looking around;
* seat: blends the legs (and the chair position) between standing and sitting;
* gestures: wrist targets and elbow poles for the arms (``synthetic_body.pose_world``), switched
  on and off by smooth episode envelopes with random durations.

Every take draws its own speed, amplitudes, phases, heading and path, so takes of one action
differ. Angles are radians (written ``degrees * DEG``), lengths metres, speeds m/s, durations
seconds, time in frames at ``FPS``. Shared quantities are named constants; the numbers inside an
action function are that action's choreography, kept next to the motion they shape.
"""
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from common.synthetic.body import (ANKLES, CHEST, HEAD, HIPS, KNEES, LATERAL_SIGN, LOWER_SPINE, NUM_JOINTS_32,
                                   REFERENCE_ARM_REACH_M, REFERENCE_SHOULDER_FROM_THORAX, RIGHT_ANKLE, RIGHT_KNEE,
                                   ROOT, THORAX, Body)

FPS = 50
RIGHT, LEFT = 0, 1
TAU = 2 * np.pi
DEG = np.pi / 180

# Gesture targets for the generic arm: wrist position relative to the thorax joint, chest frame,
# x OUTWARDS from the midline, y forward, z up, metres for the reference adult.
ARM_HANG = np.array([0.19, 0.04, -0.50])
ARM_WAVE = np.array([0.28, 0.12, 0.42])
ARM_EAR = np.array([0.10, 0.06, 0.14])
ARM_MOUTH = np.array([0.05, 0.17, 0.03])
ARM_TABLE = np.array([0.12, 0.38, -0.30])
ARM_LAP = np.array([0.10, 0.28, -0.42])
ARM_HIP = np.array([0.23, -0.03, -0.38])
ARM_LEASH = np.array([0.16, 0.32, -0.36])
ARM_GESTURE = np.array([0.12, 0.30, -0.16])
ARM_HANDSHAKE = np.array([0.10, 0.40, -0.30])
POINTING_REACH = 0.97                 # fraction of the arm's length when pointing
# Elbow poles (directions, same frame).
POLE_BACK = np.array([0.25, -1.0, -0.1])
POLE_OUT = np.array([1.0, 0.0, -0.6])
POLE_DOWN = np.array([0.4, -0.2, -1.0])

# Gait (reference speed, hip swing, knee and ankle curves).
WALK_REFERENCE_SPEED = 1.2            # m/s at which the hip swings by GAIT_HIP_AMPLITUDE
GAIT_HIP_AMPLITUDE = 22 * DEG
MAX_GAIT_AMOUNT = 1.3
GAIT_KNEE_SWING = 55 * DEG
GAIT_KNEE_LOADING = 12 * DEG
GAIT_PUSH_OFF = 18 * DEG
GAIT_SWING_DORSIFLEXION = 8 * DEG
GAIT_PELVIS_YAW = 5 * DEG
GAIT_CHEST_COUNTER_TWIST = 7 * DEG
GAIT_ARM_SWING_M = 0.17
STAND_HIP_FLEX = 2 * DEG
STAND_KNEE_FLEX = 4 * DEG
# Sitting on a chair: thighs near horizontal, shanks slightly back, feet apart.
SEAT_HIP_FLEX = 96 * DEG             # knees a little higher than the hips: pelvis ~0.45-0.5 m
SEAT_KNEE_FLEX = 110 * DEG
SEAT_HIP_ABDUCTION = 7 * DEG
SEAT_TRANSITION_LEAN = 38 * DEG

# Where on the floor takes happen (world metres). The four Human3.6M cameras see a whole standing
# person only within about 1.3 m of CAPTURE_CENTRE, furthest along y; walking paths are ellipses
# (semi-axes (min, max) along and across) whose long axis stays within PATH_TILT_SPREAD of y.
CAPTURE_CENTRE = (0.3, 0.8)
WALK_PATH_RADII = ((1.0, 1.3), (0.5, 0.7))
STAND_PATH_RADII = ((0.2, 0.4), (0.1, 0.3))
WALK_PATH_CENTRE = 0.15
STAND_PATH_CENTRE = 0.3
PATH_TILT_SPREAD = 0.4
PATH_SAMPLES = 1025                  # ellipse points for the arc-length parametrisation
IDLE_FADE_SPEED = 0.3                # m/s: weight shifts and turning in place fade out above this
IDLE_TURN = 20 * DEG                 # slow heading changes while standing


@dataclass
class Channels:
    """Pose curves of one take. Sides are ordered (right, left).

    root_xy (N, 2) metres world floor position; heading (N,) radians about world z (0: facing +y);
    pelvis, lower_spine, chest, neck, head (N, 3): (twist left, bend forward, lean right), each
    relative to its parent; hip (N, 2, 3): (twist, flexion, abduction); knee (N, 2) flexion;
    ankle (N, 2) dorsiflexion; wrist_target, elbow_pole (N, 2, 3): see ``pose_world``.
    """
    root_xy: np.ndarray
    heading: np.ndarray
    pelvis: np.ndarray
    lower_spine: np.ndarray
    chest: np.ndarray
    neck: np.ndarray
    head: np.ndarray
    hip: np.ndarray
    knee: np.ndarray
    ankle: np.ndarray
    wrist_target: np.ndarray
    elbow_pole: np.ndarray

    @classmethod
    def neutral(cls, n: int) -> 'Channels':
        """Standing straight at the origin facing +y, arms hanging."""
        zeros3 = np.zeros((n, 3))
        return cls(root_xy=np.zeros((n, 2)), heading=np.zeros(n), pelvis=zeros3.copy(),
                   lower_spine=zeros3.copy(), chest=zeros3.copy(), neck=zeros3.copy(), head=zeros3.copy(),
                   hip=np.zeros((n, 2, 3)), knee=np.zeros((n, 2)), ankle=np.zeros((n, 2)),
                   wrist_target=np.broadcast_to(ARM_HANG, (n, 2, 3)).copy(),
                   elbow_pole=np.broadcast_to(POLE_BACK, (n, 2, 3)).copy())

    def local_euler(self) -> np.ndarray:
        """(N, 32, 3) local rotations in ``synthetic_body.EULER_ORDER`` (twist z, flexion x, lateral y)."""
        n = self.heading.shape[0]
        angles = np.zeros((n, NUM_JOINTS_32, 3))

        def trunk(v):   # (twist left, bend forward, lean right) -> (z, x, y)
            return np.stack([v[:, 0], -v[:, 1], v[:, 2]], axis=-1)

        angles[:, ROOT] = trunk(self.pelvis)
        angles[:, ROOT, 0] += self.heading
        angles[:, LOWER_SPINE] = trunk(self.lower_spine)
        angles[:, CHEST] = trunk(self.chest)
        angles[:, THORAX] = trunk(self.neck)
        angles[:, HEAD] = trunk(self.head)
        angles[:, list(HIPS), 0] = self.hip[..., 0]
        angles[:, list(HIPS), 1] = self.hip[..., 1]
        angles[:, list(HIPS), 2] = -LATERAL_SIGN * self.hip[..., 2]     # abduction moves the foot outwards
        angles[:, list(KNEES), 1] = -self.knee
        angles[:, list(ANKLES), 1] = self.ankle
        return angles


# ----------------------------------------------------------------------------- signals

def smooth_noise(rng, n: int, shape=(), low_hz=0.1, high_hz=0.5, components=4) -> np.ndarray:
    """(n, *shape) smooth random curves of unit RMS: sums of sinusoids with random frequencies and phases."""
    freqs = rng.uniform(low_hz, high_hz, (components,) + tuple(shape))
    phases = rng.uniform(0, TAU, (components,) + tuple(shape))
    t = np.arange(n).reshape((n, 1) + (1,) * len(shape)) / FPS
    return np.sin(TAU * freqs * t + phases).sum(axis=1) * np.sqrt(2.0 / components)


def episodes(rng, n: int, active_s, rest_s, start_active=False):
    """Alternating rest/active intervals with random durations (seconds, (min, max) ranges).

    Returns active (n,) bool and episode (n,) int: the index of the active interval a frame is in
    (or of the next one while resting), for drawing per-episode parameters.
    """
    shortest = min(active_s[0], rest_s[0])
    count = int(np.ceil(n / FPS / shortest)) // 2 + 2
    durations = np.stack([rng.uniform(*rest_s, count), rng.uniform(*active_s, count)], axis=1).reshape(-1)
    if start_active:
        durations[0] = 0.0
    boundaries = np.cumsum(durations) * FPS
    interval = np.searchsorted(boundaries, np.arange(n), side='right')
    return interval % 2 == 1, interval // 2


def soften(mask: np.ndarray, ramp_s: float) -> np.ndarray:
    """Smooth a 0/1 (n,) mask into an envelope in [0, 1] with transitions of about ``ramp_s`` seconds."""
    return gaussian_filter1d(mask.astype(np.float64), sigma=ramp_s * FPS / 2, mode='nearest')


def bump(phase: np.ndarray, power=8) -> np.ndarray:
    """Periodic bump: 1 at phase 0 (mod 2 pi), falling to 0 about +-1.5 rad away."""
    return np.cos(phase / 2) ** power


def blend_arm(ch: Channels, side: int, weight: np.ndarray, target, pole=None):
    """Move one arm's wrist target (and pole) towards ``target`` by ``weight`` (n,) in [0, 1]."""
    w = weight[:, None]
    ch.wrist_target[:, side] += w * (target - ch.wrist_target[:, side])
    if pole is not None:
        ch.elbow_pole[:, side] += w * (pole - ch.elbow_pole[:, side])


# ----------------------------------------------------------------------------- layers

def _ellipse_path(rng, n: int, speed: np.ndarray, radii, centre_spread: float):
    """Root floor positions (n, 2) and travel directions (n,) headings along a random ellipse."""
    a, b = rng.uniform(*radii[0]), rng.uniform(*radii[1])
    centre = np.array(CAPTURE_CENTRE) + rng.uniform(-centre_spread, centre_spread, 2)
    tilt = np.pi / 2 + rng.uniform(-PATH_TILT_SPREAD, PATH_TILT_SPREAD)
    direction = rng.choice([-1.0, 1.0])
    dense = np.linspace(0, TAU, PATH_SAMPLES)
    points = np.stack([a * np.cos(dense), b * np.sin(dense)], axis=-1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=-1))])
    travelled = rng.uniform(0, arc[-1]) + np.cumsum(speed) / FPS
    theta = direction * np.interp(np.mod(travelled, arc[-1]), arc, dense)
    rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    xy = np.stack([a * np.cos(theta), b * np.sin(theta)], axis=-1) @ rot.T + centre
    tangent = direction * np.stack([-a * np.sin(theta), b * np.cos(theta)], axis=-1) @ rot.T
    heading = np.unwrap(np.arctan2(-tangent[:, 0], tangent[:, 1]))     # body +y along the tangent
    return xy, heading


def locomotion(rng, n: int, body: Body, speed: np.ndarray, radii, centre_spread: float) -> Channels:
    """Walk along a random ellipse at ``speed`` (n,) m/s (0 = standing): root path, heading, legs, arm swing."""
    ch = Channels.neutral(n)
    ch.root_xy, ch.heading = _ellipse_path(rng, n, speed, radii, centre_spread)
    gait = np.clip(speed / WALK_REFERENCE_SPEED, 0.0, MAX_GAIT_AMOUNT)
    hip_amplitude = GAIT_HIP_AMPLITUDE * gait
    # Cadence from stride length (two steps of 2 L sin(A)) so that feet roughly keep pace.
    stride = 4 * body.leg_length * np.sin(hip_amplitude)
    standing_cadence = WALK_REFERENCE_SPEED / (4 * body.leg_length * GAIT_HIP_AMPLITUDE)
    cadence = np.where(stride > 1e-6, speed / np.maximum(stride, 1e-6), standing_cadence)
    phase = rng.uniform(0, TAU) + TAU * np.cumsum(cadence) / FPS
    # Leg phase: hip flexion follows sin(phase); 0 = mid-swing (knee most bent just after),
    # +pi/2 = heel strike (hip most flexed), -pi/2 = push-off (hip most extended).
    leg_phase = phase[:, None] + np.array([0.0, np.pi])                 # (n, 2): right, left
    swing = np.minimum(gait, 1.0)[:, None]
    hip_flex = STAND_HIP_FLEX + hip_amplitude[:, None] * np.sin(leg_phase)
    knee_flex = STAND_KNEE_FLEX + swing * (GAIT_KNEE_SWING * bump(leg_phase - 0.2, 6)
                                           + GAIT_KNEE_LOADING * bump(leg_phase - 2.0))
    ch.hip[..., 1] = hip_flex
    ch.knee[:] = knee_flex
    ch.ankle[:] = knee_flex - hip_flex + swing * (GAIT_SWING_DORSIFLEXION * bump(leg_phase, 2)
                                                  - GAIT_PUSH_OFF * bump(leg_phase + np.pi / 2 + 0.1))
    ch.pelvis[:, 0] = GAIT_PELVIS_YAW * gait * np.sin(phase)
    ch.chest[:, 0] = -GAIT_CHEST_COUNTER_TWIST * gait * np.sin(phase)
    # Each arm swings with the opposite leg: forward while its own leg is back.
    arm_swing = -GAIT_ARM_SWING_M * gait[:, None] * np.sin(leg_phase)
    ch.wrist_target[..., 1] += arm_swing
    ch.wrist_target[..., 2] += 0.3 * np.maximum(arm_swing, 0.0)
    return ch


def idle(rng, ch: Channels, amount=1.0, look_deg=15.0):
    """Weight shifts, small trunk sway and looking around, while (mostly) not walking."""
    n = ch.heading.shape[0]
    still = amount * np.clip(1.0 - np.hypot(*np.gradient(ch.root_xy, axis=0).T) * FPS / IDLE_FADE_SPEED, 0.0, 1.0)
    weight = np.tanh(1.5 * smooth_noise(rng, n, (), 0.04, 0.2))          # -1: on the left leg, +1: right
    ch.pelvis[:, 2] -= 3 * DEG * weight * still                          # the unloaded side drops
    ch.hip[..., 2] += (3 * DEG * weight * still)[:, None] * np.array([-1.0, 1.0])
    ch.knee += 7 * DEG * still[:, None] * np.stack([np.maximum(-weight, 0), np.maximum(weight, 0)], axis=-1)
    ch.ankle += 7 * DEG * still[:, None] * np.stack([np.maximum(-weight, 0), np.maximum(weight, 0)], axis=-1)
    ch.lower_spine += 1.5 * DEG * smooth_noise(rng, n, (3,), 0.1, 0.4)
    ch.chest += 2 * DEG * smooth_noise(rng, n, (3,), 0.1, 0.4)
    ch.neck += np.array([0.4, 0.4, 0.2]) * look_deg * DEG * smooth_noise(rng, n, (3,), 0.05, 0.3)
    ch.head += np.array([0.6, 0.3, 0.2]) * look_deg * DEG * smooth_noise(rng, n, (3,), 0.05, 0.3)
    ch.wrist_target += 0.025 * smooth_noise(rng, n, (2, 3), 0.1, 0.5)
    ch.heading += IDLE_TURN * smooth_noise(rng, n, (), 0.02, 0.1) * still


def seat(ch: Channels, body: Body, amount: np.ndarray):
    """Blend the legs towards sitting on a chair by ``amount`` (n,) in [0, 1]; the chair stands
    behind the feet, so the root moves back by the feet's forward offset."""
    w = amount[:, None]
    ch.hip[..., 1] += w * (SEAT_HIP_FLEX - ch.hip[..., 1])
    ch.hip[..., 2] += w * (SEAT_HIP_ABDUCTION - ch.hip[..., 2])
    ch.knee += w * (SEAT_KNEE_FLEX - ch.knee)
    ch.ankle += w * (ch.knee - ch.hip[..., 1] - ch.ankle)
    lengths = body.bone_lengths()
    feet_forward = (lengths[RIGHT_KNEE] * np.sin(SEAT_HIP_FLEX)
                    + lengths[RIGHT_ANKLE] * np.sin(SEAT_HIP_FLEX - SEAT_KNEE_FLEX))
    facing = np.stack([-np.sin(ch.heading), np.cos(ch.heading)], axis=-1)
    ch.root_xy -= (amount * feet_forward)[:, None] * facing
    transition = 4 * amount * (1 - amount)
    ch.lower_spine[:, 1] += SEAT_TRANSITION_LEAN * 0.4 * transition
    ch.chest[:, 1] += SEAT_TRANSITION_LEAN * 0.6 * transition


def _wander_speed(rng, n, speed_range, walk_s, rest_s):
    walking, _ = episodes(rng, n, walk_s, rest_s)
    return rng.uniform(*speed_range) * soften(walking, 0.8)


def _standing(rng, n, body, wander_speed=(0.0, 0.0), walk_s=(1.0, 2.0), rest_s=(3.0, 6.0), look_deg=15.0):
    speed = _wander_speed(rng, n, wander_speed, walk_s, rest_s)
    ch = locomotion(rng, n, body, speed, STAND_PATH_RADII, STAND_PATH_CENTRE)
    idle(rng, ch, look_deg=look_deg)
    return ch


def _pointing_target(azimuth, elevation):
    """(n, 3) wrist target of an arm stretched towards (azimuth outwards, elevation up), radians."""
    direction = np.stack([np.sin(azimuth) * np.cos(elevation), np.cos(azimuth) * np.cos(elevation),
                          np.sin(elevation)], axis=-1)
    return REFERENCE_SHOULDER_FROM_THORAX + POINTING_REACH * REFERENCE_ARM_REACH_M * direction


# ----------------------------------------------------------------------------- actions

def walking(rng, n, body):
    """Steady walking around the room with natural arm swing."""
    speed = rng.uniform(1.0, 1.4) * (1 + 0.08 * smooth_noise(rng, n, (), 0.05, 0.2))
    ch = locomotion(rng, n, body, speed, WALK_PATH_RADII, WALK_PATH_CENTRE)
    idle(rng, ch, amount=0.0, look_deg=8.0)
    ch.chest[:, 1] += rng.uniform(0, 6) * DEG
    return ch


def walk_dog(rng, n, body):
    """Slower walking with stops; one hand holds a leash forward-down and gets tugged; looking down."""
    stopped, _ = episodes(rng, n, (1.0, 2.5), (2.0, 4.0))
    speed = rng.uniform(0.7, 1.0) * (1 - 0.9 * soften(stopped, 0.8))
    ch = locomotion(rng, n, body, speed, WALK_PATH_RADII, WALK_PATH_CENTRE)
    idle(rng, ch, amount=0.5)
    side = rng.integers(2)
    tug = 0.05 * smooth_noise(rng, n, (3,), 0.8, 3.0)
    blend_arm(ch, side, np.ones(n), ARM_LEASH + tug, POLE_DOWN)
    ch.chest[:, 1] += rng.uniform(4, 10) * DEG
    ch.head[:, 1] += rng.uniform(10, 25) * DEG + 8 * DEG * smooth_noise(rng, n, (), 0.1, 0.5)
    ch.head[:, 0] += LATERAL_SIGN[side] * -10 * DEG          # looking at the dog on the leash side
    return ch


def directions(rng, n, body):
    """Standing, pointing in several directions with either arm, turning towards them; a few steps."""
    ch = _standing(rng, n, body, wander_speed=(0.5, 0.8))
    pointing, episode = episodes(rng, n, (1.5, 3.0), (1.0, 2.5))
    count = episode.max() + 1
    side = rng.integers(2, size=count)[episode]
    azimuth = rng.uniform(-15, 65, count)[episode] * DEG
    elevation = rng.uniform(-25, 25, count)[episode] * DEG
    target = _pointing_target(azimuth, elevation)
    for s in (RIGHT, LEFT):
        envelope = soften(pointing & (side == s), 0.5)
        blend_arm(ch, s, envelope, target, POLE_DOWN)
        turn = -LATERAL_SIGN[s] * azimuth * envelope      # towards the pointing side (left = +twist)
        ch.chest[:, 0] += 0.35 * turn
        ch.head[:, 0] += 0.5 * turn
    if rng.random() < 0.5:
        blend_arm(ch, rng.integers(2), np.full(n, 0.6), ARM_HIP, POLE_OUT)
    return ch


def discussion(rng, n, body):
    """Standing and talking: both hands make beat gestures in front of the chest, head turns."""
    ch = _standing(rng, n, body, wander_speed=(0.4, 0.6), rest_s=(4.0, 8.0), look_deg=25.0)
    for s in (RIGHT, LEFT):
        gesturing, _ = episodes(rng, n, (1.0, 3.0), (0.5, 2.5))
        beat = ARM_GESTURE + np.array([0.08, 0.08, 0.08]) * smooth_noise(rng, n, (3,), 0.5, 1.8)
        blend_arm(ch, s, soften(gesturing, 0.4), beat, POLE_DOWN)
    ch.chest[:, 0] += 10 * DEG * smooth_noise(rng, n, (), 0.05, 0.3)
    return ch


def eating(rng, n, body):
    """Sitting at a table; one hand repeatedly brings food to the mouth, the other stays on the table."""
    ch = locomotion(rng, n, body, np.zeros(n), STAND_PATH_RADII, STAND_PATH_CENTRE)
    idle(rng, ch, amount=0.3)
    seat(ch, body, np.ones(n))
    hand = rng.integers(2)
    to_mouth, _ = episodes(rng, n, (0.8, 1.6), (1.2, 3.0))
    envelope = soften(to_mouth, 0.5)
    blend_arm(ch, hand, np.ones(n), ARM_TABLE + 0.03 * smooth_noise(rng, n, (3,), 0.2, 0.8), POLE_DOWN)
    blend_arm(ch, hand, envelope, ARM_MOUTH, POLE_DOWN)
    blend_arm(ch, 1 - hand, np.ones(n), ARM_TABLE + 0.04 * smooth_noise(rng, n, (3,), 0.1, 0.5), POLE_DOWN)
    ch.chest[:, 1] += rng.uniform(5, 12) * DEG + 4 * DEG * envelope
    ch.head[:, 1] += rng.uniform(5, 15) * DEG + 6 * DEG * envelope
    return ch


def sitting(rng, n, body):
    """Sitting on a chair, hands resting on the lap, leaning and stretching a leg now and then."""
    ch = locomotion(rng, n, body, np.zeros(n), STAND_PATH_RADII, STAND_PATH_CENTRE)
    idle(rng, ch, look_deg=25.0)
    seat(ch, body, np.ones(n))
    ch.lower_spine[:, 1] += 6 * DEG * smooth_noise(rng, n, (), 0.03, 0.15)
    ch.chest[:, 1] += rng.uniform(-5, 10) * DEG + 6 * DEG * smooth_noise(rng, n, (), 0.03, 0.15)
    stretching, episode = episodes(rng, n, (2.0, 4.0), (2.0, 5.0))
    leg = rng.integers(2, size=episode.max() + 1)[episode]
    for s in (RIGHT, LEFT):
        envelope = soften(stretching & (leg == s), 0.8)
        ch.knee[:, s] -= 64 * DEG * envelope          # shank forward, foot still near the floor
        ch.hip[:, s, 1] -= 12 * DEG * envelope
        ch.ankle[:, s] -= 52 * DEG * envelope         # keeps the foot flat
    for s in (RIGHT, LEFT):
        blend_arm(ch, s, np.ones(n), ARM_LAP + 0.03 * smooth_noise(rng, n, (3,), 0.1, 0.4), POLE_BACK)
    touching_face, _ = episodes(rng, n, (1.0, 2.0), (4.0, 8.0))
    blend_arm(ch, rng.integers(2), soften(touching_face, 0.6), ARM_MOUTH, POLE_DOWN)
    return ch


def sitting_down(rng, n, body):
    """Standing, sitting down on a chair, staying seated a while, standing up again."""
    ch = _standing(rng, n, body)
    seated, _ = episodes(rng, n, (2.5, 4.5), (1.0, 2.5))
    amount = soften(seated, 1.2)
    seat(ch, body, amount)
    for s in (RIGHT, LEFT):
        blend_arm(ch, s, amount, ARM_LAP, POLE_BACK)
    return ch


def greeting(rng, n, body):
    """Standing; waving a hand above the head, shaking hands and bowing, in turns."""
    ch = _standing(rng, n, body, wander_speed=(0.6, 0.9), rest_s=(3.0, 5.0))
    gesturing, episode = episodes(rng, n, (1.5, 3.0), (0.8, 2.0), start_active=True)
    count = episode.max() + 1
    kind = rng.choice(3, size=count, p=[0.5, 0.3, 0.2])
    kind[0] = 0                                            # every take starts with a wave
    kind = kind[episode]
    hand = RIGHT if rng.random() < 0.8 else LEFT
    wave = soften(gesturing & (kind == 0), 0.5)
    t = np.arange(n) / FPS
    frequency = rng.uniform(1.6, 2.6)
    wag = np.array([0.11, 0.0, 0.02])[None] * np.sin(TAU * frequency * t)[:, None]
    blend_arm(ch, hand, wave, ARM_WAVE + wag, POLE_OUT)
    ch.head[:, 2] += -LATERAL_SIGN[hand] * 8 * DEG * wave
    shake = soften(gesturing & (kind == 1), 0.5)
    pump = np.array([0.0, 0.0, 0.05])[None] * np.sin(TAU * 2.5 * t)[:, None]
    blend_arm(ch, hand, shake, ARM_HANDSHAKE + pump, POLE_DOWN)
    bow = soften(gesturing & (kind == 2), 0.7)
    ch.lower_spine[:, 1] += 15 * DEG * (bow + 0.3 * shake)
    ch.chest[:, 1] += 15 * DEG * (bow + 0.3 * shake)
    ch.head[:, 1] += 15 * DEG * bow
    return ch


def phoning(rng, n, body):
    """Holding a phone to the ear while standing or pacing; the free hand hangs or rests on the hip."""
    ch = _standing(rng, n, body, wander_speed=(0.5, 0.8), walk_s=(1.5, 3.0), rest_s=(2.0, 4.0), look_deg=20.0)
    hand = rng.integers(2)
    blend_arm(ch, hand, np.ones(n), ARM_EAR + 0.015 * smooth_noise(rng, n, (3,), 0.1, 0.5), POLE_OUT)
    ch.head[:, 2] += LATERAL_SIGN[hand] * rng.uniform(5, 12) * DEG
    on_hip, _ = episodes(rng, n, (2.0, 5.0), (2.0, 5.0))
    blend_arm(ch, 1 - hand, soften(on_hip, 0.6), ARM_HIP, POLE_OUT)
    return ch


ACTIONS = {
    'Directions': directions,
    'Discussion': discussion,
    'Eating': eating,
    'Greeting': greeting,
    'Phoning': phoning,
    'Sitting': sitting,
    'SittingDown': sitting_down,
    'WalkDog': walk_dog,
    'Walking': walking,
}
# Human3.6M's six other actions, for the set at its real size (``writer --h36m-size``, where the
# amount of data matters, not the choreography): each performed with the script of the action
# that resembles it most.
STAND_INS = {
    'Photo': 'Directions',          # aiming at something, arms raised
    'Posing': 'Greeting',           # standing, arms gesturing
    'Purchases': 'WalkDog',         # walking with the hands carrying something
    'Smoking': 'Phoning',           # standing, a hand going to the face
    'Waiting': 'Discussion',        # standing, shifting weight, small gestures
    'WalkTogether': 'Walking',
}


def motion_script(action: str):
    """The script performing ``action``: its own (``ACTIONS``), or its stand-in's (``STAND_INS``)."""
    return ACTIONS[STAND_INS.get(action, action)]
