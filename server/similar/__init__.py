"""Similar images: perceptual hashes (`phash`, run in the scan's workers), their persistent
cache (`cache`), the index that groups hashes within a Hamming distance (`index`), the similar
kind of scan run (`run`), its results grouped on request (`results`) and the groups, deletes and
resolutions the HTTP routes use (`service`)."""
