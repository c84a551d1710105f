"""What the two Flask apps share: error responses, the API object, access checks."""
