-- An enrolment with the names a page shows beside it: its cohort, its standard version and
-- the people in it. One definition for every reader that shows an enrolment.
create view enrolment_detail as
select e.enrolment_id, e.cohort_id, co.name as cohort_name, co.starts_on as cohort_starts_on,
       s.standard_id, s.title as standard_title, s.urn as standard_urn,
       e.candidate_id, c.display_name as candidate_name,
       e.assessor_id, a.display_name as assessor_name,
       e.iqa_id, i.display_name as iqa_name,
       e.withdrawn_at, e.withdrawn_reason
  from enrolment e
  join cohort co using (cohort_id)
  join standard s using (standard_id)
  join app_user c on c.user_id = e.candidate_id
  left join app_user a on a.user_id = e.assessor_id
  left join app_user i on i.user_id = e.iqa_id;
