terraform {
  required_version = ">= 1.5.7"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Same floor as the other modules, so one provider version serves the whole stack.
      version = ">= 5.81"
    }
  }
}
