"""Site adaptation: fit a trained TAN to a scanner's unlabelled clips (`edge-tan adapt`)."""
