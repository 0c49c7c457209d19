variable "name" {
  description = "Repository name."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the images."
  type        = string
}

variable "expiring_tag_prefix" {
  description = "Tag prefixes of throwaway images that may expire; other tags never do."
  type        = list(string)
}

variable "keep_images" {
  description = "How many images with an expiring tag prefix to keep; older ones expire."
  type        = number
}
