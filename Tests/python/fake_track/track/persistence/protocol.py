"""Stand-in for track.persistence.protocol.Protocol: the methods every backend implements."""


class Protocol:
    METHODS = ["log_trial_start", "log_trial_finish", "log_trial_chrono_start", "log_trial_chrono_finish",
               "log_trial_arguments", "log_trial_metadata", "log_trial_metrics", "add_trial_tags", "set_trial_status",
               "new_project", "get_project", "fetch_projects", "new_trial_group", "get_trial_group", "fetch_groups",
               "set_group_metadata", "fetch_and_update_group", "add_project_trial", "add_group_trial", "new_trial",
               "get_trial", "fetch_trials", "fetch_and_update_trial", "commit"]
