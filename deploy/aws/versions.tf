terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Remote state (recommended; see README.md "Remote state"). Uncomment and
  # run `terraform init -backend-config=backend.hcl` with a backend.hcl made
  # from backend.hcl.example. The state holds the generated database and
  # OpenSearch passwords: the bucket must be encrypted and access-restricted.
  #
  # backend "s3" {}
}
