variable "project_id" {
  description = "GCP project to try the modules in."
  type        = string
}

variable "region" {
  description = "Region of the network, VMs and buckets."
  type        = string
}
