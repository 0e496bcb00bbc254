-- wrk script: POSTs judgements, taking (path, form body) lines in turn from the file named by
-- JUDGEMENTS, as a signed-in assessor's browser would send them (its cookie in COOKIE).
local requests = {}
local next_one = 1

function init(args)
  for line in io.lines(os.getenv("JUDGEMENTS")) do
    local path, body = line:match("^([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Sec-Fetch-Site"] = "same-origin",
      ["Cookie"] = os.getenv("COOKIE"),
    }, body)
  end
end

function request()
  local r = requests[next_one]
  next_one = next_one % #requests + 1
  return r
end
