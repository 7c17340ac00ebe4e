"""Test-wide settings: every test and notebook kernel runs in the fast `smoke` profile, offline."""
import os
import tempfile

# Kernels started by nbval inherit this process's environment, so setting it here reaches the notebooks.
os.environ["UNET_COURSE_PROFILE"] = "smoke"
os.environ.setdefault("UNET_COURSE_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Before torch starts (here, in pytest's first conftest): idle OpenMP threads spin briefly, then sleep, so the suite
# keeps its speed on a machine that is doing other work (measured in README, "Run profiles"). Kernels inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # libgomp: spin briefly first (as utils.config explains)
# Decoded photos (utils.data.cache) of test runs stay out of the student's own cache.
os.environ.setdefault("UNET_COURSE_CACHE", os.path.join(tempfile.gettempdir(), "unet-course-test-cache"))
