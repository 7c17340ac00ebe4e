"""The course's models, one readable file each."""
from utils.models.common import ResidualDenoiser, count_parameters
from utils.models.u2net import RSU, U2Net, U2NetP
from utils.models.unet import UNet
from utils.models.vgg16_unet import VGG16UNet

__all__ = ["RSU", "ResidualDenoiser", "U2Net", "U2NetP", "UNet", "VGG16UNet", "count_parameters"]
