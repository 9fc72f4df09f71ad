"""Dale meets Langevin, a multiplicative denoising diffusion model: the notebook-first reference implementation."""
__version__ = "0.1.0"
