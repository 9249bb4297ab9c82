"""Stand-in for track.serialization: objects with track's JSON fields as attributes."""


class Obj:
    def __init__(self, **fields):
        self.__dict__.update(fields)


class Project(Obj):
    pass


class TrialGroup(Obj):
    pass


class Trial(Obj):
    pass


class Status(Obj):
    pass


KINDS = {"project": Project, "trial_group": TrialGroup, "trial": Trial}


def from_json(value):
    return KINDS[value["dtype"]](**value)


def to_json(obj):
    if isinstance(obj, Status):
        return {"name": obj.name, "value": obj.value}
    return dict(obj.__dict__)
