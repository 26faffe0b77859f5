// Starting points of a new flow (/ui/flows/new?template=…), and a copy's source under a new id.

export const TEMPLATES = [
  { id: 'hello', title: 'Hello world', description: 'One task logging a message from an input.', source: `id: hello_world
namespace: company.team

inputs:
  - id: greeting
    type: STRING
    defaults: Hello World!

tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.greeting }}"
` },
  { id: 'schedule', title: 'Scheduled flow', description: 'Runs every day at 9:00, reading the schedule date.', source: `id: daily_report
namespace: company.team

tasks:
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: "Report for {{ trigger.date ?? execution.startDate }}"

triggers:
  - id: every_morning
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * *"
` },
  { id: 'parallel', title: 'Parallel tasks', description: 'Two branches at once, then a final task.', source: `id: parallel_work
namespace: company.team

tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: left
        type: io.kestra.plugin.core.log.Log
        message: left branch
      - id: right
        type: io.kestra.plugin.core.log.Log
        message: right branch
  - id: done
    type: io.kestra.plugin.core.log.Log
    message: both branches finished
` },
  { id: 'foreach', title: 'Loop over values', description: 'ForEach over a list, one task run per value.', source: `id: for_each_value
namespace: company.team

tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["alpha", "beta", "gamma"]
    tasks:
      - id: show
        type: io.kestra.plugin.core.log.Log
        message: "{{ taskrun.value }}"
` },
  { id: 'errors', title: 'Error handling', description: 'A failing task, retries, and an errors branch.', source: `id: handle_errors
namespace: company.team

tasks:
  - id: fails
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: something went wrong
    retry:
      type: constant
      interval: PT1S
      maxAttempts: 2

errors:
  - id: alert
    type: io.kestra.plugin.core.log.Log
    level: ERROR
    message: "{{ flow.id }} failed in {{ execution.id }}"
` },
];

/** The source with its top-level `id:` replaced. */
export function withId(source, id) {
  return /^id:.*$/m.test(source) ? source.replace(/^id:.*$/m, `id: ${id}`) : `id: ${id}\n${source}`;
}
