"""The batch function: aggregates a finished batch's items into its manifest and COCO file."""
