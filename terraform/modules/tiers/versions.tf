terraform {
  # No provider: this module only computes, so `terraform test` runs it offline.
  required_version = ">= 1.7"
}
