# Plans of the whole stack with the real AWS provider, offline: fake credentials, no account or
# region lookups, and the few data sources that would call AWS overridden. Run by deploy/aws/check
# (`terraform test`); a plan that the provider or Terraform refuses fails the test.

provider "aws" {
  #checkov:skip=CKV_AWS_41: AWS's documented example key pair, not a credential: the plans run offline and never reach AWS.
  region                      = "us-east-1"
  access_key                  = "AKIAIOSFODNN7EXAMPLE"
  secret_key                  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

# A region opened in 2025: no regional ELB account, so access logs must go to the log-delivery
# service principal (aws_elb_service_account failed the plan there).
provider "aws" {
  #checkov:skip=CKV_AWS_41: AWS's documented example key pair, not a credential: the plans run offline and never reach AWS.
  alias                       = "new_region"
  region                      = "ap-southeast-7"
  access_key                  = "AKIAIOSFODNN7EXAMPLE"
  secret_key                  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

variables {
  acm_certificate_arn   = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  image_tag             = "0.1.0-test"
  allowed_ingress_cidrs = ["203.0.113.0/24"]
}

override_data {
  target = data.aws_caller_identity.current
  values = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:user/test"
    user_id    = "AIDAEXAMPLE"
  }
}

override_data {
  target = data.aws_availability_zones.selected
  values = { names = ["us-east-1a", "us-east-1b"] }
}

override_data {
  target = module.database.data.aws_secretsmanager_random_password.runtime
  values = {
    random_password = "0123456789abcdefghijABCDEFGHIJ0123456789"
  }
}

run "default_deployment" {
  command = plan

  # The first apply brings up everything but the services (README.md "First deployment").
  assert {
    condition     = module.ecs.sync_desired_count == 0 && module.ecs.api_desired_count == 0
    error_message = "run_services must default to false: the services start only after the admin tasks"
  }

  # IAM is the default: tasks sign their requests, no engine password exists anywhere.
  assert {
    condition     = alltrue([for kind in ["api", "sync", "admin"] : contains(module.ecs.environment_names[kind], "ATHENS_ENGINE_AUTH")])
    error_message = "every task must sign its OpenSearch requests (ATHENS_ENGINE_AUTH=aws-sigv4)"
  }

  assert {
    condition     = !anytrue([for kind in ["api", "sync", "admin"] : anytrue([for n in module.ecs.secret_names[kind] : strcontains(n, "ENGINE")])])
    error_message = "no task may get an engine password"
  }

  # The sync reports its figures as EMF lines for the alarms (namespace Athens, dimension Stack).
  assert {
    condition     = contains(module.ecs.environment_names["sync"], "ATHENS_METRICS_EMF") && contains(module.ecs.environment_names["sync"], "ATHENS_METRICS_EMF_STACK")
    error_message = "the sync task must emit its metrics for CloudWatch"
  }

  # The long-running tasks log in as the runtime role; only admin tasks get the owner's password.
  assert {
    condition     = join(",", module.ecs.secret_names["api"]) == "ATHENS_DATABASE_URL" && join(",", module.ecs.secret_names["sync"]) == "ATHENS_DATABASE_URL"
    error_message = "api and sync must get only the runtime role's URL"
  }

  assert {
    condition     = contains(module.ecs.secret_names["admin"], "ATHENS_DATABASE_PASSWORD")
    error_message = "admin tasks must get the owner's password from RDS's secret"
  }

  assert {
    condition     = module.database.connection_options == "sslmode=verify-full&sslrootcert=/etc/athens/rds-ca-bundle.pem"
    error_message = "connections to RDS must verify the certificate against the bundled CA"
  }

  # Pre-August-2022 region: the ELB account delivers access logs, and so may the service principal.
  assert {
    condition     = module.alb.access_log_writers.accounts == ["arn:aws:iam::127311923021:root"] && length(module.alb.access_log_writers.services) == 1
    error_message = "us-east-1 access logs must be writable by the regional ELB account and the log-delivery principal"
  }

  assert {
    condition     = module.database.parameter_group_family == "postgres16"
    error_message = "the parameter group family follows db_engine_version"
  }
}

run "region_opened_after_2022" {
  command   = plan
  providers = { aws = aws.new_region }

  variables {
    region              = "ap-southeast-7"
    acm_certificate_arn = "arn:aws:acm:ap-southeast-7:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    run_services        = true
    run_sync            = false # stop only the writer, e.g. for a reindex
    db_engine_version   = "17"
    db_parameters       = { "rds.logical_replication" = "1" }
  }

  override_data {
    target = data.aws_availability_zones.selected
    values = { names = ["ap-southeast-7a", "ap-southeast-7b"] }
  }

  assert {
    condition     = length(module.alb.access_log_writers.accounts) == 0 && length(module.alb.access_log_writers.services) == 1
    error_message = "a new region's access logs go to the log-delivery service principal only"
  }

  assert {
    condition     = module.ecs.sync_desired_count == 0 && module.ecs.api_desired_count == 2
    error_message = "run_services = true with run_sync = false runs the API (api_min_count tasks) but not the sync"
  }

  assert {
    condition     = module.database.parameter_group_family == "postgres17"
    error_message = "db_engine_version 17 needs the postgres17 family"
  }
}

run "name_is_validated" {
  command = plan

  variables {
    name = "athens--x-"
  }

  expect_failures = [var.name]
}
