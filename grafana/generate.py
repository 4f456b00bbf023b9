#!/usr/bin/env python3
"""Writes grafana/dashboards/*.json. The JSON files are what Grafana loads and what the tests
check; edit this file and run `python3 grafana/generate.py` to change them."""
import json
import os
import sys

DS = {"type": "prometheus", "uid": "sideline-prometheus"}
HERE = os.path.dirname(os.path.abspath(__file__))
P = 'team=~"$team", session=~"$session"'
PP = 'team=~"$team", player=~"$player", session=~"$session"'
# Rates use Grafana's built-in $__rate_interval: at least four scrapes at any zoom.


def var_query(name, label, query, multi=True, include_all=True, text=None):
    return {
        "name": name,
        "label": text or name.capitalize(),
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"var-{name}"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": include_all,
        "allValue": ".*" if include_all else None,
        "current": {},
        "regex": "",
    }


def var_custom(name, values, default, text):
    return {
        "name": name,
        "label": text,
        "type": "custom",
        "query": ",".join(values),
        "current": {"text": default, "value": default},
        "options": [{"text": v, "value": v, "selected": v == default} for v in values],
        "multi": False,
        "includeAll": False,
    }


_ids = [0]


def panel(title, kind, targets, x, y, w, h, unit=None, thresholds=None, desc="", extra=None,
          overrides=None):
    _ids[0] += 1
    fd = {"defaults": {}, "overrides": overrides or []}
    if unit:
        fd["defaults"]["unit"] = unit
    if thresholds:
        fd["defaults"]["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in thresholds],
        }
        fd["defaults"]["color"] = {"mode": "thresholds"}
    p = {
        "id": _ids[0],
        "title": title,
        "description": desc,
        "type": kind,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": fd,
        "targets": [
            dict({"refId": chr(65 + i), "datasource": DS}, **t) for i, t in enumerate(targets)
        ],
        "options": {},
    }
    if extra:
        p.update(extra)
    return p


def t(expr, legend="", instant=False, fmt=None):
    d = {"expr": expr, "legendFormat": legend, "range": not instant, "instant": instant}
    if fmt:
        d["format"] = fmt
    return d


RISK_STEPS = [("green", None), ("orange", 3), ("red", 5)]


def dashboard(uid, title, desc, panels, variables, annotations=(), refresh="5s", time="now-30m"):
    return {
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": ["sideline"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": refresh,
        "time": {"from": time, "to": "now"},
        "timezone": "browser",
        "templating": {"list": list(variables)},
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
             "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
             "name": "Annotations & Alerts", "type": "dashboard"},
        ] + list(annotations)},
        "panels": panels,
    }


def live_match():
    _ids[0] = 0
    team = var_query("team", "team", "label_values(sideline_player_risk_score, team)")
    session = var_query("session", "session",
                        'label_values(sideline_player_risk_score{team=~"$team"}, session)')
    window = var_custom("window", ["60", "180", "300", "600"], "300", "Rolling window (s)")
    by = "max by (team, player)"
    squad = panel(
        "Squad by strain-risk attention", "table",
        [t(f"{by} (sideline_player_risk_score{{{P}}})", instant=True, fmt="table"),
         t(f"{by} (sideline_player_forecast_red_minutes{{{P}}})", instant=True, fmt="table"),
         t(f'{by} (sideline_player_rolling_hsr_metres{{{P}, window_s="$window"}})', instant=True,
           fmt="table"),
         t(f'{by} (sideline_player_rolling_sprint_metres{{{P}, window_s="$window"}})',
           instant=True, fmt="table"),
         t(f"{by} (sideline_player_hsr_metres{{{P}}})", instant=True, fmt="table"),
         t(f"{by} (sideline_player_signal{{{P}}})", instant=True, fmt="table"),
         t(f"{by} (sideline_player_risk_completeness_ratio{{{P}}})", instant=True, fmt="table")],
        0, 0, 12, 16,
        desc="Highest score first. The score ranks players for attention; it is not an injury "
             "probability. Amber from 3, red from 5 points (engine defaults). Known: the share "
             "of the score's possible points whose inputs are known; below 100 % an unknown "
             "term could lift the score.",
        extra={
            "transformations": [
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": {"Value #A": "Score", "Value #B": "Red in (min)",
                                     "Value #C": "HSR in window (m)",
                                     "Value #D": "Sprint in window (m)",
                                     "Value #E": "Session HSR (m)", "Value #F": "Signal",
                                     "Value #G": "Known"}}},
                {"id": "sortBy", "options": {"sort": [{"field": "Score", "desc": True}]}},
            ],
            "options": {"showHeader": True, "cellHeight": "sm"},
        },
        overrides=[
            {"matcher": {"id": "byName", "options": "Score"}, "properties": [
                {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                {"id": "thresholds", "value": {"mode": "absolute", "steps": [
                    {"color": "green", "value": None}, {"color": "orange", "value": 3},
                    {"color": "red", "value": 5}]}},
                {"id": "decimals", "value": 1}]},
            {"matcher": {"id": "byName", "options": "Known"}, "properties": [
                {"id": "unit", "value": "percentunit"}, {"id": "decimals", "value": 0},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                {"id": "thresholds", "value": {"mode": "absolute", "steps": [
                    {"color": "orange", "value": None}, {"color": "text", "value": 1}]}}]},
            {"matcher": {"id": "byName", "options": "Signal"}, "properties": [
                {"id": "mappings", "value": [{"type": "value", "options": {
                    "0": {"text": "ok", "color": "green"},
                    "1": {"text": "poor fix", "color": "orange"},
                    "2": {"text": "no signal", "color": "red"}}}]},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
            {"matcher": {"id": "byName", "options": "player"}, "properties": [
                {"id": "links", "value": [{
                    "title": "${__value.raw}: the player's dashboard",
                    "url": "/d/sideline-player/sideline-player?var-team=${__data.fields.team}"
                           "&var-player=${__value.raw}&var-session=${session}&${__url_time_range}",
                }]}]},
        ])
    score = panel("Strain-risk score", "timeseries",
                  [t(f"sideline_player_risk_score{{{P}}}", "{{player}}")],
                  12, 0, 12, 8, thresholds=RISK_STEPS,
                  extra={"options": {"legend": {"displayMode": "table", "placement": "right",
                                                "calcs": ["lastNotNull", "max"]}}},
                  overrides=[])
    score["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "line"}}
    counts = panel("Players amber / red / without signal", "stat",
                   [t(f"sum(sideline_player_risk_band{{{P}}} == bool 1)", "amber", instant=True),
                    t(f"sum(sideline_player_risk_band{{{P}}} == bool 2)", "red", instant=True),
                    t(f"sum(sideline_player_signal{{{P}}} == bool 2)", "no signal",
                      instant=True)],
                   12, 8, 12, 8, thresholds=[("green", None), ("orange", 1)])
    hsr = panel("Rolling HSR (≥ 5.5 m/s) over the last $window s", "timeseries",
                [t(f'sideline_player_rolling_hsr_metres{{{P}, window_s="$window"}}',
                   "{{player}}")], 0, 16, 12, 9, unit="lengthm")
    sprint = panel("Rolling sprint distance (≥ 7 m/s) over the last $window s", "timeseries",
                   [t(f'sideline_player_rolling_sprint_metres{{{P}, window_s="$window"}}',
                      "{{player}}")], 12, 16, 12, 9, unit="lengthm")
    dist = panel("Session distance", "bargauge",
                 [t(f"max by (player) (sideline_player_distance_metres{{{P}}})", "{{player}}",
                    instant=True)], 0, 25, 24, 8, unit="lengthm",
                 extra={"options": {"orientation": "vertical", "displayMode": "basic"}})
    # The alerts' conditions, each naming the player (the alert events themselves carry no
    # per-player metric: labels stay bounded).
    ann = [
        {"name": "Red band", "datasource": DS, "enable": True, "iconColor": "red",
         "expr": f"sideline_player_risk_band{{{P}}} == 2", "step": "15s",
         "titleFormat": "{{player}}: strain-risk red", "tagKeys": "team,player",
         "textFormat": "{{player}} ({{team}}) in the red band", "useValueForTime": False},
        {"name": "Amber band", "datasource": DS, "enable": True, "iconColor": "orange",
         "expr": f"sideline_player_risk_band{{{P}}} == 1", "step": "15s",
         "titleFormat": "{{player}}: strain-risk amber", "tagKeys": "team,player",
         "textFormat": "{{player}} ({{team}}) in the amber band", "useValueForTime": False},
        {"name": "No signal", "datasource": DS, "enable": True, "iconColor": "purple",
         "expr": f"sideline_player_signal{{{P}}} == 2", "step": "15s",
         "titleFormat": "{{player}}: no signal", "tagKeys": "team,player",
         "textFormat": "{{player}} ({{team}}): the pod sends no usable fix",
         "useValueForTime": False},
    ]
    return dashboard("sideline-live-match", "Sideline · Live match",
                     "Squad table by strain-risk attention, rolling high-speed running and "
                     "sprinting per player, alerts as annotations.",
                     [squad, score, counts, hsr, sprint, dist], [team, session, window], ann)


def player():
    _ids[0] = 0
    team = var_query("team", "team", "label_values(sideline_player_risk_score, team)",
                     multi=False, include_all=False)
    who = var_query("player", "player",
                    'label_values(sideline_player_risk_score{team=~"$team"}, player)',
                    multi=False, include_all=False)
    session = var_query("session", "session",
                        'label_values(sideline_player_risk_score{team=~"$team", '
                        'player=~"$player"}, session)')
    panels = [
        panel("Strain-risk score", "timeseries",
              [t(f"sideline_player_risk_score{{{PP}}}", "score {{session}}")], 0, 0, 12, 8,
              thresholds=RISK_STEPS),
        panel("Score by block (after caps)", "timeseries",
              [t(f"sideline_player_risk_block_score{{{PP}}}", "{{block}}")], 12, 0, 12, 8,
              desc="a susceptibility, b load spikes, c under-preparation, d live fatigue",
              extra={"fieldConfig": {"defaults": {"custom": {"stacking": {"mode": "normal"},
                                                             "fillOpacity": 40}},
                                     "overrides": []}}),
        panel("Risk terms over time (points)", "timeseries",
              [t(f"sideline_player_risk_term_points{{{PP}}}", "{{term}}")], 0, 8, 12, 9,
              desc="Every term of the score; 0 = not fired, gaps = input unknown."),
        panel("Minutes to red at the current rate", "timeseries",
              [t(f"sideline_player_forecast_red_minutes{{{PP}}}", "to red")], 12, 8, 12, 9,
              unit="m"),
        panel("Rolling high-speed running by window", "timeseries",
              [t(f"sideline_player_rolling_hsr_metres{{{PP}}}", "{{window_s}} s")],
              0, 17, 8, 8, unit="lengthm"),
        panel("Rolling sprint distance by window", "timeseries",
              [t(f"sideline_player_rolling_sprint_metres{{{PP}}}", "{{window_s}} s")],
              8, 17, 8, 8, unit="lengthm"),
        panel("Rolling distance by window", "timeseries",
              [t(f"sideline_player_rolling_distance_metres{{{PP}}}", "{{window_s}} s")],
              16, 17, 8, 8, unit="lengthm"),
        panel("Fatigue markers", "timeseries",
              [t(f"sideline_player_post_peak_decrement_ratio{{{PP}}}",
                 "HSR after peak vs average"),
               t(f"sideline_player_load_per_metre_change_ratio{{{PP}}}",
                 "accelerometer load per metre"),
               t(f"sideline_player_vertical_share_change_ratio{{{PP}}}",
                 "vertical share of load")],
              0, 25, 12, 8, unit="percentunit",
              desc="Change against the player's own first 15 minutes; empty until enough "
                   "time on the field."),
        panel("Heart rate and accelerometer load", "timeseries",
              [t(f"sideline_player_heart_rate_bpm{{{PP}}}", "heart rate (bpm)"),
               t(f"sideline_player_accel_load{{{PP}}}", "accelerometer load (AU)")],
              12, 25, 12, 8),
        panel("Session totals", "stat",
              [t(f"sideline_player_distance_metres{{{PP}}}", "distance", instant=True),
               t(f"sideline_player_hsr_metres{{{PP}}}", "HSR", instant=True),
               t(f"sideline_player_sprint_metres{{{PP}}}", "sprint", instant=True)],
              0, 33, 24, 5, unit="lengthm"),
    ]
    return dashboard("sideline-player", "Sideline · Player",
                     "One player: the score's terms over time, rolling windows, fatigue markers.",
                     panels, [team, who, session], refresh="10s", time="now-2h")


def squad_trends():
    _ids[0] = 0
    team = var_query("team", "team", "label_values(sideline_player_risk_score, team)")
    T = 'team=~"$team"'
    by = "max by (team, player)"
    panels = [
        panel("7-day high-speed running (incl. today)", "bargauge",
              [t(f"{by} (sideline_player_hsr_7d_metres{{{T}}})", "{{player}}", instant=True)],
              0, 0, 12, 10, unit="lengthm",
              desc="The baseline's previous 6 days (from `sideline baselines`) plus the live "
                   "session.", extra={"options": {"orientation": "horizontal"}}),
        panel("7-day HSR z-score against the player's own history", "bargauge",
              [t(f"{by} (sideline_player_hsr_7d_z{{{T}}})", "{{player}}", instant=True)],
              12, 0, 12, 10, thresholds=[("blue", None), ("green", -1), ("orange", 1),
                                         ("red", 2)],
              extra={"options": {"orientation": "horizontal"}}),
        panel("7-day HSR change against the week before", "bargauge",
              [t(f"{by} (sideline_player_hsr_7d_change_ratio{{{T}}})", "{{player}}",
                 instant=True)],
              0, 10, 12, 10, unit="percentunit",
              thresholds=[("green", None), ("orange", 0.3), ("red", 0.6)],
              extra={"options": {"orientation": "horizontal"}}),
        panel("Days since ≥ 95 % / ≥ 90 % Vmax exposure", "table",
              [t(f'{by} (sideline_player_days_since_vmax_days{{{T}, threshold="95"}})',
                 instant=True, fmt="table"),
               t(f'{by} (sideline_player_days_since_vmax_days{{{T}, threshold="90"}})',
                 instant=True, fmt="table")],
              12, 10, 12, 10,
              desc="0 = reached this session. Over 7 days without ≥ 95 % is an under-"
                   "preparation term of the score.",
              extra={"transformations": [
                  {"id": "merge", "options": {}},
                  {"id": "organize", "options": {"excludeByName": {"Time": True},
                                                 "renameByName": {"Value #A": "≥ 95 % (days)",
                                                                  "Value #B": "≥ 90 % (days)"}}},
                  {"id": "sortBy", "options": {"sort": [{"field": "≥ 95 % (days)",
                                                         "desc": True}]}}]},
              thresholds=[("green", None), ("orange", 5), ("red", 7)]),
        panel("Session HSR by player over time", "timeseries",
              [t(f"max by (player) (sideline_player_hsr_metres{{{T}}})", "{{player}}")],
              0, 20, 24, 8, unit="lengthm"),
    ]
    return dashboard("sideline-squad-trends", "Sideline · Squad trends",
                     "Weekly load, z-scores and days since max-velocity exposure per player "
                     "(the processor's view of the baselines published by `sideline baselines`; "
                     "full history is in the archive: `sideline report --player`).",
                     panels, [team], refresh="1m", time="now-6h")


def pipeline():
    _ids[0] = 0
    panels = [
        panel("Services up", "stat", [t('up{job=~"sideline-.*"}', "{{job}} {{instance}}",
                                          instant=True)], 0, 0, 24, 4,
              thresholds=[("red", None), ("green", 1)],
              extra={"fieldConfig": {"defaults": {"mappings": [{"type": "value", "options": {
                  "0": {"text": "DOWN"}, "1": {"text": "up"}}}],
                  "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                                {"color": "green", "value": 1}]},
                  "color": {"mode": "thresholds"}}, "overrides": []}}),
        panel("Ingest: messages and samples per second", "timeseries",
              [t("sum(rate(sideline_ingest_messages_received_total[$__rate_interval]))", "messages received"),
               t("sum(rate(sideline_ingest_samples_accepted_total[$__rate_interval]))", "samples accepted"),
               t("sum(rate(sideline_processor_samples_total[$__rate_interval]))", "samples processed")],
              0, 4, 12, 8, unit="ops"),
        panel("Dead-letter queue by reason", "timeseries",
              [t("sum by (reason) (rate(sideline_ingest_messages_rejected_total[$__rate_interval]))",
                 "ingest: {{reason}}"),
               t("sum by (reason) (rate(sideline_processor_dlq_records_total[$__rate_interval]))",
                 "processor: {{reason}}")],
              12, 4, 12, 8, unit="ops"),
        panel("Kafka consumer lag (records)", "timeseries",
              [t("sum by (instance) (sideline_processor_consumer_lag_records)",
                 "processor {{instance}}")], 0, 12, 12, 8, unit="short"),
        panel("Latency p50 / p99", "timeseries",
              [t("histogram_quantile(0.5, sum by (le) "
                 "(rate(sideline_processor_event_to_output_seconds_bucket[$__rate_interval])))",
                 "event → metrics p50"),
               t("histogram_quantile(0.99, sum by (le) "
                 "(rate(sideline_processor_event_to_output_seconds_bucket[$__rate_interval])))",
                 "event → metrics p99"),
               t("histogram_quantile(0.99, sum by (le) "
                 "(rate(sideline_ingest_ack_latency_seconds_bucket[$__rate_interval])))",
                 "MQTT → Kafka ack p99")],
              12, 12, 12, 8, unit="s"),
        panel("Alert deliveries to chat", "timeseries",
              [t("sum by (destination) (increase(sideline_alerter_messages_delivered_total[5m]))",
                 "delivered {{destination}}"),
               t("sum by (destination, reason) "
                 "(increase(sideline_alerter_delivery_failures_total[5m]))",
                 "failed {{destination}} {{reason}}"),
               t("sum by (destination) (increase(sideline_alerter_rate_limited_total[5m]))",
                 "429 {{destination}}"),
               t("sum by (destination, reason) "
                 "(increase(sideline_alerter_messages_dropped_total[15m]))",
                 "given up {{destination}} {{reason}}")],
              0, 20, 12, 8, unit="short"),
        panel("Chat outbox waiting", "timeseries",
              [t("sum by (destination) (sideline_alerter_outbox_pending)", "{{destination}}")],
              12, 20, 6, 8, unit="short"),
        panel("Alert events produced", "timeseries",
              [t("sum by (kind) (increase(sideline_processor_alerts_produced_total[5m]))",
                 "{{kind}}")], 18, 20, 6, 8, unit="short"),
        panel("Archive: rows committed per second", "timeseries",
              [t("sum by (table) (rate(sideline_archive_rows_total[$__rate_interval]))", "{{table}}"),
               t("sum(sideline_archive_buffered_rows)", "buffered (rows)")],
              0, 28, 12, 8, unit="short"),
        panel("Connections", "timeseries",
              [t("min(sideline_ingest_mqtt_connected)", "ingest ↔ MQTT"),
               t("min(sideline_ingest_kafka_connected)", "ingest ↔ Kafka"),
               t("sum(sideline_processor_assigned_partitions)", "processor partitions")],
              12, 28, 12, 8),
        panel("Processor event time behind the wall clock, by partition", "timeseries",
              [t("time() - sideline_processor_partition_event_time_seconds", "p{{partition}}")],
              0, 36, 12, 8, unit="s",
              desc="How far each partition's stream time (its newest sample; moved on with the "
                   "wall clock once the partition is idle) is behind now. About a second in a "
                   "live match. When a partition's pods stop it rises for the idle time "
                   "(idle_advance_s) and then holds, the partition moving on with the clock; a "
                   "line that keeps rising is a partition the processor is not keeping up with "
                   "(lag, a stall). A replay of old data sits at its age."),
        panel("Ingest backlog on disk (MQTT spool)", "timeseries",
              [t("sum(sideline_ingest_mqtt_spool_bytes)", "spool bytes"),
               t("sum(rate(sideline_ingest_mqtt_spilled_messages_total[$__rate_interval]))", "spilled/s"),
               t("sum(increase(sideline_ingest_mqtt_spool_errors_total[5m]))",
                 "spool errors (5m)")],
              12, 36, 12, 8, unit="short",
              desc="Bytes in ingest's disk spool (messages beyond its in-memory backlog, still "
                   "unacknowledged at the broker) and messages spilled per second. Non-zero "
                   "only while Kafka is slower than MQTT in; spool errors mean a full or "
                   "failing disk."),
    ]
    return dashboard("sideline-pipeline", "Sideline · Pipeline health",
                     "Ingest rate, dead letters by reason, Kafka lag, processing latency, alert "
                     "deliveries and failures, archive commits.", panels, [], refresh="10s",
                     time="now-1h")


# The training ground: history from the archive over the PostgreSQL protocol (`[archive.sql]
# listen`), not live gauges. Every query here runs in a test against an archive made by
# `sideline history` (services/sideline-cli/tests/it/pg_server.rs).
PG = {"type": "grafana-postgresql-datasource", "uid": "sideline-archive"}
LIVE = "source = 'live' AND team IN ($team) AND player IN ($player)"
# Each session's final totals per player (metrics rows are per second and cumulative).
SESSION_TOTALS = (
    "SELECT player, session, max(t) AS t, max(hsr_m) AS hsr_m, max(sprint_m) AS sprint_m, "
    "max(v24_m) AS v24_m, max(accelerations) AS accelerations, max(vmax90) AS vmax90, "
    "max(vmax95) AS vmax95 FROM metrics WHERE " + LIVE + " GROUP BY player, session"
)


def var_sql(name, label, sql, multi=True):
    return {
        "name": name, "label": label, "type": "query", "datasource": PG,
        "query": sql, "definition": sql, "refresh": 1, "sort": 0, "multi": multi,
        "includeAll": multi, "current": {}, "regex": "",
    }


def sql_panel(title, kind, sql, x, y, w, h, fmt="table", unit=None, desc="", extra=None):
    p = panel(title, kind, [{"rawSql": sql, "format": fmt, "rawQuery": True,
                             "editorMode": "code"}], x, y, w, h, unit=unit, desc=desc,
              extra=extra)
    p["datasource"] = PG
    for t in p["targets"]:
        t["datasource"] = PG
    return p


def training_ground():
    _ids[0] = 0
    team = var_sql("team", "Team", "SELECT DISTINCT team FROM metrics ORDER BY 1")
    player = var_sql("player", "Player",
                     "SELECT DISTINCT player FROM metrics WHERE team IN ($team) ORDER BY 1")
    session = var_sql("session", "Session",
                      "SELECT DISTINCT session FROM metrics WHERE team IN ($team) "
                      "ORDER BY 1 DESC", multi=False)
    weekly = (
        "SELECT player, date_trunc('week', t) AS week, count(*) AS sessions, "
        "round(sum(hsr_m)) AS hsr_m, round(sum(sprint_m)) AS sprint_m, "
        "round(sum(v24_m)) AS v24_m, CAST(sum(accelerations) AS BIGINT) AS accelerations "
        f"FROM ({SESSION_TOTALS}) s WHERE $__timeFilter(t) "
        "GROUP BY player, date_trunc('week', t) ORDER BY week DESC, player"
    )
    weekly_hsr = (
        "SELECT date_trunc('week', t) AS \"time\", player AS metric, sum(hsr_m) AS hsr_m "
        f"FROM ({SESSION_TOTALS}) s WHERE $__timeFilter(t) GROUP BY 1, 2 ORDER BY 1"
    )
    acute_chronic = (
        "SELECT * FROM (SELECT day AS \"time\", player, "
        "sum(hsr) OVER (PARTITION BY player ORDER BY day "
        "RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW) AS hsr_7d_m, "
        "sum(hsr) OVER (PARTITION BY player ORDER BY day "
        "RANGE BETWEEN INTERVAL '27 days' PRECEDING AND CURRENT ROW) / 4 AS hsr_28d_per_week_m "
        "FROM (SELECT player, date_trunc('day', t) AS day, sum(hsr_m) AS hsr "
        f"FROM ({SESSION_TOTALS}) s GROUP BY player, date_trunc('day', t)) d) w "
        "WHERE $__timeFilter(\"time\") ORDER BY 1, 2"
    )
    z = (
        "SELECT m.t AS \"time\", m.player, m.b_hsr_z_state AS state, "
        "m.b_hsr_z_value AS z, m.b_hsr_z_threshold AS threshold, m.b_hsr_z_points AS points "
        "FROM metrics m JOIN (SELECT player, session, max(t) AS t FROM metrics "
        f"WHERE {LIVE} AND $__timeFilter(t) GROUP BY player, session) l "
        "ON m.player = l.player AND m.session = l.session AND m.t = l.t "
        "WHERE m.source = 'live' ORDER BY 1 DESC, 2"
    )
    vmax = (
        "SELECT player, max(CASE WHEN vmax95 > 0 THEN t END) AS last_95, "
        "max(CASE WHEN vmax90 > 0 THEN t END) AS last_90, "
        "floor((extract(epoch FROM CAST($__timeTo() AS TIMESTAMP)) - "
        "extract(epoch FROM max(CASE WHEN vmax95 > 0 THEN t END))) / 86400) AS days_since_95, "
        "floor((extract(epoch FROM CAST($__timeTo() AS TIMESTAMP)) - "
        "extract(epoch FROM max(CASE WHEN vmax90 > 0 THEN t END))) / 86400) AS days_since_90 "
        f"FROM ({SESSION_TOTALS}) s WHERE t <= CAST($__timeTo() AS TIMESTAMP) "
        "GROUP BY player ORDER BY days_since_95 DESC NULLS FIRST, player"
    )
    summary = (
        "SELECT m.player, round(m.minutes, 1) AS minutes, round(m.distance_m) AS distance_m, "
        "round(m.hsr_m) AS hsr_m, round(m.sprint_m) AS sprint_m, round(m.v24_m) AS v24_m, "
        "m.sprints, m.accelerations, m.decelerations, "
        "round(m.max_speed_mps * 3.6, 1) AS max_speed_kmh, p.peak_risk, p.amber_s, p.red_s "
        "FROM metrics m JOIN (SELECT player, max(t) AS t, max(risk_score) AS peak_risk, "
        "count(*) FILTER (WHERE risk_band = 'amber') AS amber_s, "
        "count(*) FILTER (WHERE risk_band = 'red') AS red_s FROM metrics "
        "WHERE source = 'live' AND team IN ($team) AND session = '$session' GROUP BY player) p "
        "ON m.player = p.player AND m.t = p.t "
        "WHERE m.source = 'live' AND m.session = '$session' ORDER BY m.player"
    )
    alerts = (
        "SELECT a.t AS \"time\", a.player, a.kind, a.severity, a.state, a.band, a.summary, "
        "k.\"by\" AS acknowledged_by, k.at AS acknowledged_at "
        "FROM alerts a LEFT JOIN acks k ON k.alert_id = a.id "
        "WHERE a.team IN ($team) AND a.player IN ($player) AND $__timeFilter(a.t) "
        "ORDER BY a.t DESC"
    )
    panels = [
        sql_panel("Weekly loads per player", "table", weekly, 0, 0, 12, 10,
                  desc="Each session's final totals, summed per ISO week: high-speed running "
                       "(> 19.8 km/h), sprint (> 25.2 km/h), above 24 km/h, accelerations."),
        sql_panel("Weekly HSR", "timeseries", weekly_hsr, 12, 0, 12, 10, fmt="time_series",
                  unit="lengthm"),
        sql_panel("7-day HSR against the 28-day weekly average", "table", acute_chronic,
                  0, 10, 12, 10, unit="lengthm",
                  desc="Rolling sums over calendar days (UTC), sessions only; the 28-day sum "
                       "is divided by 4 to compare week with week."),
        sql_panel("7-day HSR z-score the risk score used (session end)", "table", z,
                  12, 10, 12, 10,
                  desc="The b_hsr_z term as the live score had it at each session's last "
                       "second: state (fired / clear / unknown), z, threshold, points."),
        sql_panel("Days since ≥ 95 % / ≥ 90 % Vmax", "table", vmax, 0, 20, 12, 10,
                  desc="As of the end of the dashboard's time range; empty = never in the "
                       "archive."),
        sql_panel("Session summary: $session", "table", summary, 12, 20, 12, 10),
        sql_panel("Alert history and acknowledgements", "table", alerts, 0, 30, 24, 10),
    ]
    return dashboard("sideline-training-ground", "Sideline · Training ground (history)",
                     "History from the archive over the PostgreSQL protocol: weekly loads, "
                     "7-day against 28-day, the z-score the score uses, days since max-"
                     "velocity exposure, session summaries, alerts and who acknowledged them.",
                     panels, [team, player, session], refresh="", time="now-90d")


def main():
    # `generate.py [DIR]`: write to DIR instead (the test regenerates and compares).
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "dashboards")
    os.makedirs(out, exist_ok=True)
    for name, d in [("live-match", live_match()), ("player", player()),
                    ("squad-trends", squad_trends()), ("pipeline", pipeline()),
                    ("training-ground", training_ground())]:
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(d, f, indent=2, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
