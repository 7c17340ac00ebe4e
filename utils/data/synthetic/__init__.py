"""The procedural renderer behind `SyntheticPeopleDataset` (utils.data.person): people drawn on real photos.

Students do not need to read it to follow the course; it is here so that the offline fallback is reproducible.
"""
from utils.data.synthetic.renderer import make_synthetic_person_image, render_people_picture

__all__ = ["make_synthetic_person_image", "render_people_picture"]
