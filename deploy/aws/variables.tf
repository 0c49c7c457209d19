# ---------------------------------------------------------------------------
# Required: no defaults, the operator must supply these (terraform.tfvars).
# ---------------------------------------------------------------------------

variable "acm_certificate_arn" {
  description = "ARN of an issued ACM certificate (same region) for the ALB's HTTPS listener, covering the host name clients use."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-zA-Z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.acm_certificate_arn))
    error_message = "acm_certificate_arn must be an ACM certificate ARN."
  }
}

variable "image_tag" {
  description = "Tag of the Athens image in the ECR repository to run (tags are immutable; use e.g. the git commit)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a valid Docker tag other than \"latest\"."
  }
}

variable "allowed_ingress_cidrs" {
  description = "IPv4 CIDRs allowed to reach the ALB on 443 (and on 80, which only redirects). Use [\"0.0.0.0/0\"] for a public API."
  type        = list(string)

  validation {
    condition     = length(var.allowed_ingress_cidrs) > 0 && alltrue([for c in var.allowed_ingress_cidrs : can(cidrhost(c, 0))])
    error_message = "allowed_ingress_cidrs must be a non-empty list of IPv4 CIDRs."
  }
}

# ---------------------------------------------------------------------------
# General
# ---------------------------------------------------------------------------

variable "name" {
  description = "Name of the stack: prefix of every resource name (ALB, cluster, RDS identifier, OpenSearch domain, secrets ...)."
  type        = string
  default     = "athens"

  # The strictest of the names built from it: the OpenSearch domain (3-28 lowercase characters,
  # starting with a letter), the RDS identifier (no trailing hyphen, no two hyphens in a row) and
  # the ALB and target group (at most 32 characters with the "-api" suffix).
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name)) && !strcontains(var.name, "--")
    error_message = "name must be 3-20 characters of lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen and without two hyphens in a row."
  }
}

variable "region" {
  description = "AWS region to deploy into (any commercial region, including those opened after 2022)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1 or ap-southeast-7."
  }
}

variable "tags" {
  description = "Extra tags added to every resource (merged into the provider's default_tags)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group (ECS, RDS exports, OpenSearch, WAF, VPC flow logs), in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (e.g. 30, 90, 365)."
  }
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 = delete immediately, else 7-30)."
  type        = number
  default     = 7
}

variable "kms_deletion_window_days" {
  description = "Waiting period (7-30 days) before the KMS key is deleted after a destroy."
  type        = number
  default     = 30
}

# ---------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "IPv4 CIDR of the new VPC (a /16 to /18)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Two availability zones to use; empty means <region>a and <region>b."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "Give exactly two availability zones, or none."
  }
}

# ---------------------------------------------------------------------------
# Load balancer
# ---------------------------------------------------------------------------

variable "alb_ssl_policy" {
  description = "Security policy of the HTTPS listener; the default allows TLS 1.3 and 1.2 only."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "alb_deletion_protection" {
  description = "Protect the ALB from deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "alb_access_log_retention_days" {
  description = "Days ALB access logs are kept in their S3 bucket."
  type        = number
  default     = 90
}

variable "alb_block_metrics" {
  description = "Answer /metrics with 404 on the public HTTPS listener (Prometheus should scrape the tasks from inside the VPC)."
  type        = bool
  default     = true
}

variable "waf_rate_limit_per_5min" {
  description = "Requests one client IP may send per 5 minutes before WAF blocks it (at least 100)."
  type        = number
  default     = 2000

  validation {
    condition     = var.waf_rate_limit_per_5min >= 100
    error_message = "waf_rate_limit_per_5min must be at least 100."
  }
}

# ---------------------------------------------------------------------------
# Container / ECS
# ---------------------------------------------------------------------------

variable "ecr_repository_name" {
  description = "Name of the ECR repository created for the Athens image."
  type        = string
  default     = "athens"
}

variable "ecr_expiring_tag_prefixes" {
  description = "Tag prefixes of throwaway images (e.g. [\"ci-\", \"pr-\"]) of which only the newest ecr_keep_expiring_images are kept. Other tagged images never expire: the tag a service runs must stay pullable, or the next task start fails."
  type        = list(string)
  default     = []
}

variable "ecr_keep_expiring_images" {
  description = "How many images with an expiring tag prefix to keep."
  type        = number
  default     = 30
}

variable "cpu_architecture" {
  description = "CPU architecture of the tasks: X86_64, or ARM64 (about 20 % cheaper on Fargate; push an arm64 image)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "athens_index" {
  description = "ATHENS_INDEX: the search alias Athens maintains and serves."
  type        = string
  default     = "athens-projects"
}

variable "extra_environment" {
  description = "Extra non-secret environment variables for every Athens container (e.g. ATHENS_LOG = \"info,athens_core=debug\"). Never put credentials here."
  type        = map(string)
  default     = {}
}

variable "run_services" {
  description = "Run the sync and API services. false (the default) for the first apply: run the admin tasks of README.md \"First deployment\" (migrate, setup, the first backfill), then set true."
  type        = bool
  default     = false
}

variable "run_sync" {
  description = "With run_services, run the sync service. Set false to stop only the writer (e.g. for an `athens reindex` admin task, which needs the writer lease) while the API keeps serving."
  type        = bool
  default     = true
}

variable "api_cpu" {
  description = "CPU units per API task (256, 512, 1024, ...; 1024 = 1 vCPU)."
  type        = number
  default     = 512
}

variable "api_memory" {
  description = "Memory per API task in MiB (must be valid for api_cpu on Fargate)."
  type        = number
  default     = 1024
}

variable "sync_cpu" {
  description = "CPU units of the sync task (also used by one-off admin tasks such as reindex)."
  type        = number
  default     = 512
}

variable "sync_memory" {
  description = "Memory in MiB of the sync task (also used by admin tasks)."
  type        = number
  default     = 1024
}

variable "api_min_count" {
  description = "Minimum number of API tasks (2 keeps one per AZ)."
  type        = number
  default     = 2
}

variable "api_max_count" {
  description = "Maximum number of API tasks autoscaling may run."
  type        = number
  default     = 6

  validation {
    condition     = var.api_max_count >= 1
    error_message = "api_max_count must be at least 1."
  }
}

variable "api_cpu_target_percent" {
  description = "Target average CPU utilisation of the API service, percent."
  type        = number
  default     = 60
}

variable "api_requests_per_target_per_minute" {
  description = "Target ALB requests per API task per minute."
  type        = number
  default     = 1000
}

# ---------------------------------------------------------------------------
# PostgreSQL (RDS)
# ---------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_engine_version" {
  description = "PostgreSQL major version (e.g. 16 or 17); RDS chooses and auto-upgrades the minor. The parameter group family is derived from it (postgres<major>)."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^1[3-9]$", var.db_engine_version))
    error_message = "db_engine_version must be a PostgreSQL major version from 13 on, e.g. \"16\"."
  }
}

variable "db_parameters" {
  description = "Extra PostgreSQL parameters for the DB parameter group, name => value (e.g. { \"rds.logical_replication\" = \"1\" }, applied at the next reboot for static ones)."
  type        = map(string)
  default     = {}
}

variable "db_logical_replication" {
  description = "Allow Athens' logical capture mode (capture.mode = \"logical\"): sets rds.logical_replication = 1 (static: applied at the next reboot) and caps what a forgotten replication slot may retain with max_slot_wal_keep_size. Off by default: the outbox mode needs neither. The roles also need GRANT rds_replication (docs/operations.md)."
  type        = bool
  default     = false
}

variable "db_max_slot_wal_keep_size_mb" {
  description = "With db_logical_replication: WAL, MiB, a replication slot may retain before the server invalidates it (Athens then re-creates the slot and reindexes by itself). Keep it below the free storage."
  type        = number
  default     = 10240
}

variable "db_allocated_storage_gb" {
  description = "Initial gp3 storage, GiB (20 minimum)."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling, GiB."
  type        = number
  default     = 200
}

variable "db_multi_az" {
  description = "Synchronous standby in the second AZ (doubles the instance cost)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Automated backup retention, days (1-35)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "db_deletion_protection" {
  description = "Protect the RDS instance from deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "db_log_min_duration_statement_ms" {
  description = "Log statements running longer than this, in ms (-1 disables)."
  type        = number
  default     = 1000
}

variable "db_max_connections" {
  description = "Override PostgreSQL max_connections (applied at the next reboot); null keeps the RDS default from instance memory (about 400 on db.t4g.medium)."
  type        = number
  default     = null
}

variable "db_sslmode" {
  description = "sslmode in ATHENS_DATABASE_URL. The server only accepts TLS (rds.force_ssl = 1); verify-full (the default) checks the certificate and host name against the RDS CA bundle the image carries."
  type        = string
  default     = "verify-full"

  validation {
    condition     = contains(["require", "verify-ca", "verify-full"], var.db_sslmode)
    error_message = "db_sslmode must be require, verify-ca or verify-full (the server refuses plain connections)."
  }
}

# ---------------------------------------------------------------------------
# OpenSearch
# ---------------------------------------------------------------------------

variable "search_engine_version" {
  description = "OpenSearch engine version."
  type        = string
  default     = "OpenSearch_2.17"
}

variable "search_instance_type" {
  description = "OpenSearch data node instance type."
  type        = string
  default     = "m6g.large.search"
}

variable "search_instance_count" {
  description = "Number of OpenSearch data nodes (even, >= 2: one per AZ or more)."
  type        = number
  default     = 2
}

variable "search_dedicated_master_enabled" {
  description = "Dedicated master nodes: they keep cluster management off the data nodes. Over two AZs, three masters sit two and one, so losing the AZ holding two still loses the quorum; surviving an AZ outage needs three AZs."
  type        = bool
  default     = true
}

variable "search_dedicated_master_type" {
  description = "Instance type of the dedicated master nodes."
  type        = string
  default     = "m6g.large.search"
}

variable "search_dedicated_master_count" {
  description = "Number of dedicated master nodes."
  type        = number
  default     = 3
}

variable "search_volume_size_gb" {
  description = "gp3 EBS size per data node, GiB."
  type        = number
  default     = 20
}


variable "create_ecs_service_linked_role" {
  description = "Create the account-wide AWSServiceRoleForECS role before the cluster (only on an account that has never used ECS; the apply fails if it exists)."
  type        = bool
  default     = false
}

variable "create_opensearch_service_linked_role" {
  description = "Create the account-wide AWSServiceRoleForAmazonOpenSearchService role; set false if it already exists in the account."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------
# Alarms (alarms.tf)
# ---------------------------------------------------------------------------

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (confirm the subscription mail); null subscribes nobody."
  type        = string
  default     = null
}

variable "alarm_sync_lag_seconds" {
  description = "Alarm when the oldest change waiting for the index is older than this, in seconds."
  type        = number
  default     = 300
}

variable "alarm_write_failures_per_5min" {
  description = "Alarm when more index writes than this fail in 5 minutes, twice in a row."
  type        = number
  default     = 10
}

variable "alarm_alb_5xx_per_5min" {
  description = "Alarm when the ALB counts more 5xx answers (targets' or its own) than this in 5 minutes."
  type        = number
  default     = 10
}

variable "alarm_rds_free_storage_gb" {
  description = "Alarm when the PostgreSQL instance has less free storage than this, GiB."
  type        = number
  default     = 5
}

variable "alarm_jvm_pressure_percent" {
  description = "Alarm when an OpenSearch node's JVM memory pressure stays above this, percent."
  type        = number
  default     = 80
}
