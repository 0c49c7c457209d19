terraform {
  # 1.7: `terraform test` with mock providers and overrides (tests/); 1.5 would apply the stack.
  required_version = ">= 1.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }

  # Remote state (recommended; see README.md "Remote state"). Uncomment and
  # run `terraform init -backend-config=backend.hcl` with a backend.hcl made
  # from backend.hcl.example. The state holds the runtime database role's
  # password: the bucket must be encrypted and access-restricted.
  #
  # backend "s3" {}
}
