"""Text-recognition metrics: plain-Python error rates, and the TFMA metrics the Evaluator runs."""
