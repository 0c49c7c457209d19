# An ALB-only change must leave the task definitions (and so the running sync) alone.
#
# This needs a stack that exists, so the AWS provider is mocked here (its schema is the real
# provider's, the values it returns are made up): apply the default stack, then plan a change to
# the ALB's WAF rate limit and check that every task definition keeps its known ARN. A task
# definition the plan would replace has an unknown ARN, and the assertion fails ("Unknown
# condition value"), which is what a module-level depends_on on module.ecs used to cause.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }

  mock_data "aws_availability_zones" {
    defaults = { names = ["us-east-1a", "us-east-1b"] }
  }

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }

  mock_data "aws_elb_service_account" {
    defaults = { arn = "arn:aws:iam::127311923021:root" }
  }

  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }

  mock_resource "aws_db_instance" {
    defaults = {
      address = "athens.abcdefghijkl.us-east-1.rds.amazonaws.com"
      port    = 5432
      master_user_secret = [{
        kms_key_id    = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
        secret_arn    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0000-abcdef"
        secret_status = "active"
      }]
    }
  }

  # The real provider still validates arguments, and many must be ARNs: made-up but valid ones.
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:us-east-1:123456789012:athens-alarms" }
  }

  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000" }
  }

  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/athens-mock" }
  }

  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:us-east-1:123456789012:log-group:athens-mock" }
  }

  mock_resource "aws_lb" {
    defaults = {
      arn        = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/athens/0123456789abcdef"
      arn_suffix = "app/athens/0123456789abcdef"
    }
  }

  mock_resource "aws_lb_target_group" {
    defaults = {
      arn        = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/athens-api/0123456789abcdef"
      arn_suffix = "targetgroup/athens-api/0123456789abcdef"
    }
  }

  mock_resource "aws_lb_listener" {
    defaults = { arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/athens/0123456789abcdef/0123456789abcdef" }
  }

  mock_resource "aws_wafv2_web_acl" {
    defaults = { arn = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/athens/00000000-0000-0000-0000-000000000000" }
  }

  mock_resource "aws_ecs_task_definition" {
    defaults = { arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/athens:1" }
  }
}

variables {
  acm_certificate_arn                   = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  image_tag                             = "0.1.0-test"
  allowed_ingress_cidrs                 = ["203.0.113.0/24"]
  run_services                          = true
  create_opensearch_service_linked_role = false # its propagation wait would sleep in the test
}

run "deployed" {
  command = apply
}

run "alb_change_leaves_task_definitions_alone" {
  command = plan

  variables {
    waf_rate_limit_per_5min = 5000
    alb_ssl_policy          = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
  }

  assert {
    condition     = module.ecs.task_definitions == run.deployed.ecs_task_definitions
    error_message = "an ALB-only change must not replace any task definition"
  }
}
