"""Similar images: perceptual hashes (`phash`, run in the scan's workers), their persistent
cache (`cache`) and the index that groups hashes within a Hamming distance (`index`)."""
