import TrackBackends
import TrackModel

/// A backend with one deliberate defect, to prove that the conformance suite notices it.
final class FaultyBackend: TrackProtocol, @unchecked Sendable {
    enum Fault: String, CaseIterable, Sendable {
        case projectDropsMetadata, newProjectReturnsArgument, getProjectFallsBackToFirst
        case getTrialGroupDropsMetadata, newTrialGroupReturnsArgument, lenientEvenWhenStrict, strictEvenWhenLenient
        case setGroupMetadataIgnored, newTrialDropsTags, duplicateTrialAlwaysAutoIncrements, autoIncrementIgnored
        case getTrialOfUnknownHashReturnsEverything, addGroupTrialIgnored, stepsDropped, unsteppedMetricsReplaceEachOther
        case fastPathRoundsToFloat, nonFiniteBecomesNull, tagsIgnored, errorTextDropped, metadataLoggedTwice
        case finishIgnored, chronoFinishIgnored, commitLosesData, fetchTrialsDropsLastCondition
        case operatorsTreatedAsEquality, fetchGroupsIgnoresQuery, fetchAndUpdateTrialReturnsStale
        case fetchAndUpdateWithoutMatchUpdatesFirstTrial, fetchAndUpdateGroupIgnored, missingTrialErrorsSwallowed
        case unknownAttributesIgnored, missingGroupErrorsSwallowed
    }

    let fault: Fault
    let strict: Bool
    var inner: MemoryBackend

    init(fault: Fault, strict: Bool) {
        self.fault = fault
        self.strict = strict
        let innerStrict = fault == .lenientEvenWhenStrict ? false : (fault == .strictEvenWhenLenient ? true : strict)
        inner = MemoryBackend(strict: innerStrict)
    }

    private func has(_ f: Fault) -> Bool { fault == f }

    private func swallowMissing(_ body: () throws -> Void) throws {
        do { try body() } catch let e as TrackError where e.code == .itemNotFound { return }
    }

    private func cleaned(_ q: Query) -> Query {
        var q = q
        if has(.unknownAttributesIgnored) { q.conditions.removeAll { !Trial.queryAttributeNames.contains($0.path[0]) } }
        return q
    }

    func newProject(_ project: Project) throws -> Project {
        if has(.newProjectReturnsArgument) { _ = try inner.newProject(project); return project }
        var p = project
        if has(.projectDropsMetadata) { p.metadata = [:] }
        return try inner.newProject(p)
    }
    func getProject(_ uid: String) throws -> Project? {
        if has(.getProjectFallsBackToFirst) { return try inner.getProject(uid) ?? inner.fetchProjects(.all).first }
        return try inner.getProject(uid)
    }
    func fetchProjects(_ query: Query) throws -> [Project] {
        if has(.unknownAttributesIgnored) {
            var q = query
            q.conditions.removeAll { !Project.queryAttributeNames.contains($0.path[0]) }
            return try inner.fetchProjects(q)
        }
        return try inner.fetchProjects(query)
    }
    func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup {
        if has(.newTrialGroupReturnsArgument) { _ = try inner.newTrialGroup(group); return group }
        return try inner.newTrialGroup(group)
    }
    func getTrialGroup(_ uid: String) throws -> TrialGroup? {
        var g = try inner.getTrialGroup(uid)
        if has(.getTrialGroupDropsMetadata) { g?.metadata = [:] }
        return g
    }
    func fetchGroups(_ query: Query) throws -> [TrialGroup] {
        if has(.fetchGroupsIgnoresQuery) { return try inner.fetchGroups(.all) }
        if has(.unknownAttributesIgnored) {
            var q = query
            q.conditions.removeAll { !TrialGroup.queryAttributeNames.contains($0.path[0]) }
            return try inner.fetchGroups(q)
        }
        return try inner.fetchGroups(query)
    }
    func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws {
        if has(.missingGroupErrorsSwallowed) { return try swallowMissing { try inner.setGroupMetadata(group, metadata) } }
        if has(.setGroupMetadataIgnored) { return }
        try inner.setGroupMetadata(group, metadata)
    }
    func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup {
        if has(.fetchAndUpdateGroupIgnored) {
            guard let g = try inner.fetchGroups(query).first else { throw TrackError(.itemNotFound, "none") }
            return g
        }
        return try inner.fetchAndUpdateGroup(query, update)
    }
    func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial? {
        var t = trial
        if has(.newTrialDropsTags) { t.tags = [:] }
        var auto = autoIncrement
        if has(.duplicateTrialAlwaysAutoIncrements) { auto = true }
        if has(.autoIncrementIgnored) { auto = false }
        return try inner.newTrial(t, autoIncrement: auto)
    }
    func getTrial(hash: String) throws -> [Trial] {
        let found = try inner.getTrial(hash: hash)
        if has(.getTrialOfUnknownHashReturnsEverything) && found.isEmpty { return try inner.fetchTrials(.all) }
        return found
    }
    func fetchTrials(_ query: Query) throws -> [Trial] {
        var q = cleaned(query)
        if has(.fetchTrialsDropsLastCondition) && !q.conditions.isEmpty { q.conditions.removeLast() }
        if has(.operatorsTreatedAsEquality) { q.conditions = q.conditions.map { var c = $0; c.operator = .equal; return c } }
        return try inner.fetchTrials(q)
    }
    func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate) throws -> Trial {
        if has(.fetchAndUpdateTrialReturnsStale) {
            let before = try inner.fetchTrials(query).first
            _ = try inner.fetchAndUpdateTrial(query, update)
            return before!
        }
        if has(.fetchAndUpdateWithoutMatchUpdatesFirstTrial), try inner.fetchTrials(query).isEmpty {
            return try inner.fetchAndUpdateTrial(.all, update)
        }
        return try inner.fetchAndUpdateTrial(query, update)
    }
    func addProjectTrial(project: String, trial: String) throws { try inner.addProjectTrial(project: project, trial: trial) }
    func addGroupTrial(group: String, trial: String) throws {
        if has(.missingGroupErrorsSwallowed) { return try swallowMissing { try inner.addGroupTrial(group: group, trial: trial) } }
        if has(.addGroupTrialIgnored) { return }
        try inner.addGroupTrial(group: group, trial: trial)
    }
    func logTrialStart(_ trial: String) throws { try inner.logTrialStart(trial) }
    func logTrialFinish(_ trial: String) throws {
        if has(.finishIgnored) { return }
        try inner.logTrialFinish(trial)
    }
    func logTrialChronoStart(_ trial: String, name: String) throws { try inner.logTrialChronoStart(trial, name: name) }
    func logTrialChronoFinish(_ trial: String, name: String) throws {
        if has(.chronoFinishIgnored) { return }
        try inner.logTrialChronoFinish(trial, name: name)
    }
    func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws { try inner.logTrialArguments(trial, arguments) }
    func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws {
        try inner.logTrialMetadata(trial, metadata)
        if has(.metadataLoggedTwice) { try inner.logTrialMetadata(trial, metadata) }
    }
    func logTrialMetrics(_ trial: String, step: MetricStep?, _ metrics: ValueObject) throws {
        if has(.missingTrialErrorsSwallowed) { return try swallowMissing { try inner.logTrialMetrics(trial, step: step, metrics) } }
        var s = step
        if has(.stepsDropped) { s = nil }
        if has(.unsteppedMetricsReplaceEachOther) && step == nil { s = 0 }
        var m = metrics
        if has(.nonFiniteBecomesNull) {
            for (k, v) in m { if let d = v.doubleValue, !d.isFinite { m[k] = .null } }
        }
        try inner.logTrialMetrics(trial, step: s, m)
    }
    func logTrialMetric(_ trial: String, name: String, step: Int64?, value: Double) throws {
        let v = has(.fastPathRoundsToFloat) ? Double(Float(value)) : value
        try logTrialMetrics(trial, step: step.map(MetricStep.int), [name: .double(v)])
    }
    func addTrialTags(_ trial: String, _ tags: ValueObject) throws {
        if has(.tagsIgnored) { return }
        try inner.addTrialTags(trial, tags)
    }
    func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws {
        try inner.setTrialStatus(trial, status, error: has(.errorTextDropped) ? nil : error)
    }
    func commit() throws {
        if has(.commitLosesData) {
            let fresh = MemoryBackend(strict: strict)
            for p in try inner.fetchProjects(.all) { _ = try fresh.newProject(p) }
            for g in try inner.fetchGroups(.all) { _ = try fresh.newTrialGroup(g) }
            for t in try inner.fetchTrials(.all) {
                var bare = t
                bare.metrics = [:]
                _ = try fresh.newTrial(bare, autoIncrement: false)
            }
            inner = fresh
        }
        try inner.commit()
    }
}
