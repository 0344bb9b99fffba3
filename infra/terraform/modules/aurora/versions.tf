terraform {
  required_version = ">= 1.5.7"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.81 added serverlessv2_scaling_configuration.seconds_until_auto_pause (min capacity 0).
      version = ">= 5.81"
    }
  }
}
