"""A reproducible study of vanishing gradients in deep MLPs (see README.md and docs/)."""
