"""Building the trial images offline: framework images, the base image, the wheelhouse and the
images derived for a repository's own requirements."""
