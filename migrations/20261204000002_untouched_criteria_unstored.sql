-- A criterion with nothing claimed on it has no row in enrolment_criterion_status: a missing
-- row reads as not started with no claims. So a new enrolment stores no criterion rows (a
-- roster of 5,000 made 105,000), and the rows of untouched criteria are dropped here.
delete from enrolment_criterion_status
 where status = 'not_started' and claims_met = 0 and claims_not_met = 0 and claims_awaiting = 0
   and oldest_awaiting_at is null;
