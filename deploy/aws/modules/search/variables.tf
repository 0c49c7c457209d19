variable "name" {
  description = "OpenSearch domain name (3-28 chars, lowercase letters, digits, hyphens) and name prefix."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,27}$", var.name))
    error_message = "The domain name must be 3-28 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the domain."
  type        = string
}

variable "account_id" {
  description = "AWS account ID of the domain."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
}





variable "engine_version" {
  description = "OpenSearch engine version, e.g. OpenSearch_2.17."
  type        = string
}

variable "instance_type" {
  description = "Data node instance type."
  type        = string
}

variable "instance_count" {
  description = "Number of data nodes; an even number >= 2 so both AZs hold the same share."
  type        = number

  validation {
    condition     = var.instance_count >= 2 && var.instance_count % 2 == 0
    error_message = "instance_count must be an even number of at least 2 (zone awareness over two AZs)."
  }
}

variable "dedicated_master_enabled" {
  description = "Run dedicated master nodes (recommended for production: keeps a quorum when an AZ fails)."
  type        = bool
}

variable "dedicated_master_type" {
  description = "Instance type of the dedicated master nodes."
  type        = string
}

variable "dedicated_master_count" {
  description = "Number of dedicated master nodes (3 is the usual and recommended count)."
  type        = number
}

variable "volume_size_gb" {
  description = "gp3 EBS volume size per data node, GiB."
  type        = number
}

variable "subnet_ids" {
  description = "Two private subnets in different AZs."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the domain (443 from the Athens tasks only)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest, the secret and the log groups."
  type        = string
}


variable "create_service_linked_role" {
  description = "Create AWSServiceRoleForAmazonOpenSearchService (false if the account already has it)."
  type        = bool
}

variable "log_retention_days" {
  description = "Retention of the OpenSearch log groups."
  type        = number
}

