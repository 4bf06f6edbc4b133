"""Similar images: perceptual hashes, their cache and grouping."""
