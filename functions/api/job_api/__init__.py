"""The job API: HTTP routes (handler) -> job logic (service) -> DynamoDB/S3 adapters (storage)."""
