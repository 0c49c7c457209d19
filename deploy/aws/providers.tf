provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        Application = "athens"
        ManagedBy   = "terraform"
        Stack       = var.name
      },
      var.tags,
    )
  }
}
