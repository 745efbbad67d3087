"""Phone-photo augmentations (albumentations 2.x) that never change what the label means.

The score is decided by where the mottling ends relative to the knee, the kneecap, the middle of
the thigh and the groin fold. So every geometric change keeps those landmarks inside the frame
(with a margin): a draw that would push one out is redrawn, and after a few misses the photo keeps
its geometry and only gets the photometric changes. Colour changes stay mild, because mottling is a
colour pattern and must stay visible on every skin tone.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

GEOMETRIC_TRIES = 6
FADE_KEEP = (0.3, 0.75)   # how much of the lace's local contrast is kept


def fade_mottling(pixels: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator,
                  p: float) -> np.ndarray:
    """Inside the mottled mask, cut the pattern's local contrast to 30-75 %.

    Mottling on dark skin, under a dim lamp or through a soft phone lens is a faint lace; a model
    that has only seen it bold calls the faint one clean (renderer A's dark-skin mottling is
    several times bolder than renderer B's: benchmarks/mottling_visibility.py). The label does
    not change: the extent is the same, only fainter. Photos without a mask are left alone.
    """
    area = None if mask is None else (mask if mask.ndim == 2 else mask[..., 0])
    if area is None or rng.random() >= p or not (area > 127).any():
        return pixels
    keep = np.float32(rng.uniform(*FADE_KEEP))
    img = pixels.astype(np.float32)
    low = cv2.GaussianBlur(img, (0, 0), 0.02 * max(img.shape[:2]))
    soft = cv2.GaussianBlur((area > 127).astype(np.float32), (0, 0), 2.0)[..., None]
    out = img - soft * (np.float32(1) - keep) * (img - low)
    return np.clip(out + np.float32(0.5), 0, 255).astype(np.uint8)


class PhonePhotoAugment:
    """``augment(pixels, mask, landmarks, seed) -> (pixels, mask, landmarks)``; deterministic per
    seed, so a resumed run sees the same augmented images."""

    def __init__(self, strength: float = 1.0, profile: str = "phone", margin: float = 0.02,
                 fade: float = 0.0, zoom_out: float = 1.0):
        s = float(strength)
        self.margin = margin
        self.fade_p = float(fade)   # share of mottled photos given ``fade_mottling``
        if profile == "ward":
            self._ward(s, zoom_out)
            return
        if profile != "phone":
            raise ValueError(f"augment profile must be 'phone' or 'ward', got {profile!r}")
        self.geometric = A.Compose(
            [
                A.HorizontalFlip(p=0.5),
                A.RandomRotate90(p=0.5),   # phone photos of a leg come in every orientation
                A.Affine(scale=(1 - 0.12 * s, 1 + 0.10 * s), translate_percent=(-0.06 * s, 0.06 * s),
                         rotate=(-15 * s, 15 * s), shear=(-4 * s, 4 * s), border_mode=cv2.BORDER_CONSTANT,
                         fill=0, fill_mask=0, p=0.8),
                A.Perspective(scale=(0.0, 0.04 * s), fit_output=False, p=0.3),
            ],
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        )
        self.photometric = A.Compose([
            A.RandomBrightnessContrast(brightness_limit=0.2 * s, contrast_limit=0.2 * s, p=0.8),
            A.RandomGamma(gamma_limit=(int(100 - 20 * s), int(100 + 20 * s)), p=0.3),
            A.HueSaturationValue(hue_shift_limit=int(4 * s), sat_shift_limit=int(12 * s),
                                 val_shift_limit=int(8 * s), p=0.5),
            A.PlanckianJitter(p=0.3),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 3)), A.MotionBlur(blur_limit=(3, 5))],
                    p=0.25 * min(1.0, s)),
            A.GaussNoise(std_range=(0.01, 0.04 * s), p=0.3),
            A.ImageCompression(quality_range=(55, 95), p=0.4),
        ])

    def _ward(self, s: float, zoom_out: float = 1.0) -> None:
        """Stronger: the leg at any angle, wide-angle perspective, colour casts from mixed ward
        light, low contrast (mottling on dark skin in a dim room), shadows, down-sampling and
        heavy JPEG. The mottling's own colour (hue) still moves only a little."""
        self.geometric = A.Compose(
            [
                A.HorizontalFlip(p=0.5),
                A.RandomRotate90(p=0.5),
                A.Affine(scale=(1 - 0.2 * s, 1 + 0.15 * s), translate_percent=(-0.08 * s, 0.08 * s),
                         rotate=(-45 * s, 45 * s), shear=(-6 * s, 6 * s),
                         border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=0.85),
                A.Perspective(scale=(0.01, 0.08 * s), fit_output=False, p=0.4),
                # a wide phone field of view: the same leg at a third to all of the frame, so the
                # score cannot be read off where the mottling sits in the picture
                A.Affine(scale=(min(zoom_out, 1.0), 1.0), border_mode=cv2.BORDER_CONSTANT, fill=0,
                         fill_mask=0, p=0.5 if zoom_out < 1.0 else 0.0),
            ],
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        )
        self.photometric = A.Compose([
            A.RandomBrightnessContrast(brightness_limit=0.3 * s, contrast_limit=(-0.45 * s, 0.2 * s),
                                       p=0.9),
            A.RandomGamma(gamma_limit=(int(100 - 30 * s), int(100 + 40 * s)), p=0.4),
            A.HueSaturationValue(hue_shift_limit=int(5 * s), sat_shift_limit=int(25 * s),
                                 val_shift_limit=int(12 * s), p=0.5),
            A.PlanckianJitter(p=0.5),
            A.RGBShift(r_shift_limit=int(18 * s), g_shift_limit=int(14 * s),
                       b_shift_limit=int(18 * s), p=0.4),
            A.RandomShadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 2), p=0.2),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 7))],
                    p=0.3 * min(1.0, s)),
            A.Downscale(scale_range=(0.45, 0.9), p=0.25),
            A.GaussNoise(std_range=(0.01, 0.06 * s), p=0.4),
            A.ImageCompression(quality_range=(50, 95), p=0.5),
        ])

    def _inside(self, points: np.ndarray, width: int, height: int) -> bool:
        if points.size == 0:
            return True
        mx, my = self.margin * width, self.margin * height
        return bool(np.all((points[:, 0] >= mx) & (points[:, 0] <= width - 1 - mx)
                           & (points[:, 1] >= my) & (points[:, 1] <= height - 1 - my)))

    def __call__(self, pixels: np.ndarray, mask: np.ndarray | None,
                 landmarks: dict[str, tuple[float, float]], seed: int):
        names = list(landmarks)
        points = np.array([landmarks[k] for k in names], np.float32).reshape(-1, 2)
        h, w = pixels.shape[:2]
        if self.fade_p:
            pixels = fade_mottling(pixels, mask, np.random.default_rng([seed, 0xFADE]), self.fade_p)
        out_pixels, out_mask, out_points = pixels, mask, points
        for attempt in range(GEOMETRIC_TRIES):
            self.geometric.set_random_seed(seed + 104_729 * attempt)
            kwargs = {"image": pixels, "keypoints": points}
            if mask is not None:
                kwargs["mask"] = mask
            res = self.geometric(**kwargs)
            kp = np.asarray(res["keypoints"], np.float32).reshape(-1, 2)
            oh, ow = res["image"].shape[:2]  # a 90-degree turn swaps a portrait frame's sides
            if self._inside(kp, ow, oh):
                out_pixels, out_mask, out_points = res["image"], res.get("mask", None), kp
                break
        self.photometric.set_random_seed(seed + 7)
        out_pixels = self.photometric(image=np.ascontiguousarray(out_pixels))["image"]
        return (np.ascontiguousarray(out_pixels),
                None if out_mask is None else np.ascontiguousarray(out_mask),
                {k: (float(x), float(y)) for k, (x, y) in zip(names, out_points)})
