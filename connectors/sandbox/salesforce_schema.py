"""The sandbox org's objects and fields, as data: what `describe` returns and SOQL accepts.

Adding an object or a field to the sandbox is adding a line here. Each field is
`Name:type`, with `>Target/Relationship` for lookups (`OwnerId:reference>User/Owner`;
several targets `Lead|Contact` make it polymorphic, salesforce-api.md §2.1).
"""

from __future__ import annotations

from dataclasses import dataclass

_AUDIT = "CreatedDate:datetime CreatedById:reference>User/CreatedBy LastModifiedDate:datetime SystemModstamp:datetime"
_RECORD = f"Id:id IsDeleted:boolean {_AUDIT}"
_REGION = "Sales_Region__c:picklist"

# object: (key prefix, fields). Key prefixes are Salesforce's (§0).
OBJECTS: dict[str, tuple[str, str]] = {
    "User": (
        "005",
        f"Id:id {_AUDIT} Username:string Name:string FirstName:string LastName:string Email:email "
        "IsActive:boolean UserType:picklist UserRoleId:reference>UserRole/UserRole ManagerId:reference>User/Manager "
        "Department:string Division:string Title:string TimeZoneSidKey:picklist",
    ),
    "UserRole": ("00E", f"Id:id {_AUDIT} Name:string ParentRoleId:reference>UserRole/ParentRole"),
    "Account": (
        "001",
        f"{_RECORD} Name:string Type:picklist Industry:picklist AnnualRevenue:currency BillingCountry:string "
        f"BillingState:string BillingCity:string OwnerId:reference>User/Owner {_REGION} Churn_Date__c:datetime",
    ),
    "Lead": (
        "00Q",
        f"{_RECORD} FirstName:string LastName:string Name:string Company:string Email:email Status:picklist "
        "LeadSource:picklist OwnerId:reference>User/Owner Country:string State:string City:string "
        "IsConverted:boolean ConvertedDate:date ConvertedAccountId:reference>Account/ConvertedAccount "
        "ConvertedContactId:reference>Contact/ConvertedContact "
        f"ConvertedOpportunityId:reference>Opportunity/ConvertedOpportunity {_REGION} NPS__c:double",
    ),
    "Contact": (
        "003",
        f"{_RECORD} FirstName:string LastName:string Name:string AccountId:reference>Account/Account "
        "OwnerId:reference>User/Owner Email:email LeadSource:picklist MailingCountry:string MailingState:string "
        f"MailingCity:string {_REGION} NPS__c:double",
    ),
    "Opportunity": (
        "006",
        f"{_RECORD} Name:string AccountId:reference>Account/Account OwnerId:reference>User/Owner "
        "StageName:picklist Amount:currency Probability:percent CloseDate:date IsClosed:boolean IsWon:boolean "
        f"Type:picklist LeadSource:picklist ContactId:reference>Contact/Contact {_REGION} "
        "Competitor_Price__c:currency RecordTypeId:reference>RecordType/RecordType",
    ),
    "RecordType": ("012", f"Id:id {_AUDIT} Name:string DeveloperName:string SobjectType:string IsActive:boolean"),
    "OpportunityContactRole": (
        "00K",
        f"{_RECORD} OpportunityId:reference>Opportunity/Opportunity ContactId:reference>Contact/Contact "
        "Role:picklist IsPrimary:boolean",
    ),
    "OpportunityHistory": (
        "008",
        "Id:id IsDeleted:boolean CreatedDate:datetime CreatedById:reference>User/CreatedBy SystemModstamp:datetime "
        "OpportunityId:reference>Opportunity/Opportunity StageName:picklist Amount:currency CloseDate:date "
        "Probability:percent",
    ),
    "OpportunityStage": (
        "01J",
        f"Id:id {_AUDIT} ApiName:string MasterLabel:string IsActive:boolean IsClosed:boolean IsWon:boolean "
        "DefaultProbability:percent SortOrder:int",
    ),
    "Task": (
        "00T",
        f"{_RECORD} Subject:string Type:picklist TaskSubtype:picklist Status:picklist IsClosed:boolean "
        "ActivityDate:date CompletedDateTime:datetime WhoId:reference>Lead|Contact/Who "
        "WhatId:reference>Account|Opportunity|Case/What AccountId:reference>Account/Account "
        "OwnerId:reference>User/Owner CallType:picklist CallDurationInSeconds:int CallDisposition:string "
        "Direction__c:picklist Outcome__c:picklist IsArchived:boolean",
    ),
    "Event": (
        "00U",
        f"{_RECORD} Subject:string Type:picklist EventSubtype:picklist StartDateTime:datetime "
        "EndDateTime:datetime ActivityDateTime:datetime DurationInMinutes:int WhoId:reference>Lead|Contact/Who "
        "WhatId:reference>Account|Opportunity|Case/What AccountId:reference>Account/Account "
        "OwnerId:reference>User/Owner IsChild:boolean IsGroupEvent:boolean Direction__c:picklist "
        "Outcome__c:picklist IsArchived:boolean",
    ),
    "Case": (
        "500",
        f"{_RECORD} CaseNumber:string Subject:string Status:picklist Priority:picklist Origin:picklist "
        "IsClosed:boolean ClosedDate:datetime AccountId:reference>Account/Account "
        "ContactId:reference>Contact/Contact OwnerId:reference>User/Owner",
    ),
    "Campaign": (
        "701",
        f"{_RECORD} Name:string Type:picklist Status:picklist StartDate:date EndDate:date BudgetedCost:currency "
        "ActualCost:currency IsActive:boolean OwnerId:reference>User/Owner",
    ),
    "LeadHistory": (
        "017",
        "Id:id IsDeleted:boolean CreatedDate:datetime CreatedById:reference>User/CreatedBy "
        "LeadId:reference>Lead/Lead Field:picklist DataType:string OldValue:anyType NewValue:anyType",
    ),
    "PermissionSet": ("0PS", f"Id:id {_AUDIT} Name:string Label:string"),
    "FieldPermissions": (
        "01k",
        f"Id:id {_AUDIT} ParentId:reference>PermissionSet/Parent SobjectType:picklist Field:string "
        "PermissionsRead:boolean PermissionsEdit:boolean",
    ),
    "PermissionSetAssignment": (
        "0Pa",
        f"Id:id {_AUDIT} AssigneeId:reference>User/Assignee PermissionSetId:reference>PermissionSet/PermissionSet",
    ),
}

# Tooling API objects (separate namespace in Salesforce: /tooling/...).
TOOLING_OBJECTS: dict[str, tuple[str, str]] = {
    "CustomField": ("00N", f"Id:id {_AUDIT} DeveloperName:string TableEnumOrId:string FullName:string"),
}

# Objects whose records are setup data: they never show IsDeleted and have no Recycle Bin.
NO_DELETE = {
    "User",
    "UserRole",
    "RecordType",
    "OpportunityStage",
    "PermissionSet",
    "FieldPermissions",
    "PermissionSetAssignment",
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None
    custom: bool = False
    precision: int = 0
    scale: int = 0
    updateable: bool = True


_READ_ONLY = {
    "Id",
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "SystemModstamp",
    "Name",
    "IsClosed",
    "IsWon",
    "IsConverted",
    "TaskSubtype",
}


def parse_fields(spec: str) -> list[FieldSpec]:
    fields = []
    for item in spec.split():
        name, kind = item.split(":", 1)
        refs: tuple[str, ...] = ()
        rel = None
        if ">" in kind:
            kind, target = kind.split(">", 1)
            targets, rel = target.split("/")
            refs = tuple(targets.split("|"))
        fields.append(
            FieldSpec(
                name,
                kind,
                refs,
                rel,
                custom=name.endswith("__c"),
                precision=18 if kind in ("currency", "double", "percent") else 0,
                scale=2 if kind in ("currency", "double", "percent") else 0,
                updateable=name not in _READ_ONLY,
            )
        )
    return fields


SCHEMA: dict[str, list[FieldSpec]] = {name: parse_fields(spec) for name, (_p, spec) in OBJECTS.items()}
TOOLING_SCHEMA: dict[str, list[FieldSpec]] = {name: parse_fields(spec) for name, (_p, spec) in TOOLING_OBJECTS.items()}
PREFIX: dict[str, str] = {name: p for name, (p, _s) in {**OBJECTS, **TOOLING_OBJECTS}.items()}
OBJECT_BY_PREFIX: dict[str, str] = {p: name for name, p in PREFIX.items()}

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "anyType": "xsd:anyType",
}


def describe_field(spec: FieldSpec, template: dict[str, object], label: str | None = None) -> dict[str, object]:
    """One `fields[]` entry of a describe, shaped like the recorded one (describe_opportunity_full.json)."""
    entry = dict(template)
    numeric = spec.type in ("currency", "double", "percent")
    entry.update(
        {
            "name": spec.name,
            "label": label or spec.name.removesuffix("__c").replace("_", " "),
            "type": spec.type,
            "soapType": _SOAP_TYPES.get(spec.type, "xsd:string"),
            "custom": spec.custom,
            "createable": spec.updateable,
            "updateable": spec.updateable,
            "nillable": spec.name != "Id" and spec.type != "boolean",
            "permissionable": spec.custom,
            "referenceTo": list(spec.reference_to),
            "relationshipName": spec.relationship,
            "polymorphicForeignKey": len(spec.reference_to) > 1,
            "precision": spec.precision if numeric else 0,
            "scale": spec.scale if numeric else 0,
            "digits": 9 if spec.type == "int" else 0,
            "length": 255
            if spec.type in ("string", "picklist", "email")
            else (18 if spec.type in ("id", "reference") else 0),
            "byteLength": 765 if spec.type in ("string", "picklist", "email") else 18,
            "idLookup": spec.name == "Id",
            "picklistValues": [],
        }
    )
    return entry
