-- Assessors in training: every one of their sign-offs is sampled for IQA review.
alter table app_user add column is_trainee_assessor boolean not null default false;
