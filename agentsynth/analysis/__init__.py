"""Analysis of stored runs: the information audit."""
