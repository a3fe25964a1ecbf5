"""What changed since the champion (issue #19): manifest diff (diff), image-property drift
(properties) and an embedding two-sample test (mmd). Pure functions on frames and arrays, no I/O."""
