# ECR repository for the Athens image built from deploy/docker/Dockerfile.
# Tags are immutable: deploy a new tag (e.g. the git commit) rather than
# overwriting one, so a task definition always means the same image.

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

# Untagged images (superseded pushes, build layers) expire after a week. Tagged images expire
# only when their tag starts with one of expiring_tag_prefix (throwaway CI builds), newest
# keep_images kept: a release tag may be what a service runs, and expiring it would make the next
# task start (a scale-out, a replaced task) fail to pull.
resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = concat(
      [
        {
          rulePriority = 1
          description  = "Expire untagged images after 7 days"
          selection = {
            tagStatus   = "untagged"
            countType   = "sinceImagePushed"
            countUnit   = "days"
            countNumber = 7
          }
          action = { type = "expire" }
        },
      ],
      length(var.expiring_tag_prefix) == 0 ? [] : [
        {
          rulePriority = 2
          description  = "Keep the newest ${var.keep_images} throwaway images (${join(", ", var.expiring_tag_prefix)})"
          selection = {
            tagStatus     = "tagged"
            tagPrefixList = var.expiring_tag_prefix
            countType     = "imageCountMoreThan"
            countNumber   = var.keep_images
          }
          action = { type = "expire" }
        },
      ],
    )
  })
}
